//! [`DataKeyStore`] on PostgreSQL.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use zf_audit::AuditEvent;
use zf_crypto::{KeyVersion, WrappedKey};
use zf_domain::{ClientId, LeadId, RecordId};

use super::{insert_event, PgStore};
use crate::data_keys::{
    attach_records, decode_holder, decode_job, decode_sealed, reindex_client, version_bytes,
    HolderColumns, KeyJobColumns, RecordTokenColumns, HOLDER_COLUMNS, KEY_JOB_COLUMNS,
};
use crate::records::RecordKind;
use crate::{
    BlindIndexRotation, DataKeyStore, HolderFilter, HolderKeys, KeyHolder, KeyJob, KeyJobProgress,
    KeyReplacement, ReindexClient, Result, SealedAt, SealedSwap, SealedValue, StoreError,
    TokenWrite, Unique, BLIND_INDEX_PREVIOUS, BLIND_INDEX_VERSION, MFA_KEY_PREVIOUS,
    MFA_KEY_REPLACED_AT, MFA_KEY_VERSION,
};

/// As on SQLite: adds `n` to the counter of the holder's current data key, in the writing
/// transaction.
pub(crate) async fn count_encryptions(
    tx: &impl deadpool_postgres::GenericClient,
    holder: KeyHolder,
    id: &str,
    n: i64,
) -> Result<()> {
    if n > 0 {
        let (table, column) = holder.key_table();
        tx.execute(
            &format!("UPDATE {table} SET encryptions = encryptions + $1 WHERE {column} = $2"),
            &[&n, &id],
        )
        .await?;
    }
    Ok(())
}

fn holder_from(holder: KeyHolder, r: &Row) -> Result<HolderKeys> {
    decode_holder(
        holder,
        HolderColumns {
            id: r.try_get(0)?,
            wrapped_dek: r.try_get(1)?,
            dek_version: r.try_get(2)?,
            previous_dek: r.try_get(3)?,
            previous_version: r.try_get(4)?,
            encryptions: r.try_get(5)?,
            rekeyed_at_ms: r.try_get(6)?,
        },
    )
}

fn job_from(r: &Row) -> Result<KeyJob> {
    decode_job(KeyJobColumns {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        state: r.try_get(2)?,
        phase: r.try_get(3)?,
        cursor: r.try_get(4)?,
        total: r.try_get(5)?,
        holders_done: r.try_get(6)?,
        values_done: r.try_get(7)?,
        started_by: r.try_get(8)?,
        started_at_ms: r.try_get(9)?,
        updated_at_ms: r.try_get(10)?,
        finished_at_ms: r.try_get(11)?,
        lease_owner: r.try_get(12)?,
        lease_until_ms: r.try_get(13)?,
    })
}

fn record_kind(text: &str) -> Result<RecordKind> {
    RecordKind::parse(text).ok_or_else(|| StoreError::corrupt("client_records.kind", text))
}

/// As on SQLite (`sqlite/data_keys.rs`): drops a client's previous key unless a value is
/// sealed under anything but `$2`, the current version's header bytes.
const DROP_CLIENT_PREVIOUS: &str = "UPDATE client_keys
    SET previous_dek = NULL, previous_version = NULL
    WHERE client_id = $1 AND previous_dek IS NOT NULL AND dek_version = $3
    AND NOT EXISTS (SELECT 1 FROM clients c WHERE c.id = $1
        AND (substring(c.legal_rep_id_number from 3 for 4) <> $2
             OR (c.notes IS NOT NULL AND substring(c.notes from 3 for 4) <> $2)))
    AND NOT EXISTS (SELECT 1 FROM client_records r WHERE r.client_id = $1
        AND r.sealed IS NOT NULL AND substring(r.sealed from 3 for 4) <> $2)
    AND NOT EXISTS (SELECT 1 FROM client_records r JOIN record_blobs b ON b.record_id = r.id
        WHERE r.client_id = $1 AND substring(b.content from 3 for 4) <> $2)";

const DROP_LEAD_PREVIOUS: &str = "UPDATE leads
    SET previous_dek = NULL, previous_version = NULL
    WHERE id = $1 AND previous_dek IS NOT NULL AND dek_version = $3
    AND substring(sealed from 3 for 4) = $2";

impl PgStore {
    async fn holders(
        &self,
        holder: KeyHolder,
        condition: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<HolderKeys>> {
        let (table, id) = holder.key_table();
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {id}, {HOLDER_COLUMNS} FROM {table} WHERE {condition}"),
                params,
            )
            .await?;
        rows.iter().map(|r| holder_from(holder, r)).collect()
    }

    async fn client_values(&self, ids: &[String]) -> Result<Vec<SealedValue>> {
        let c = self.client().await?;
        let mut out = Vec::new();
        for r in c
            .query(
                "SELECT id, legal_rep_id_number, notes FROM clients WHERE id = ANY($1)",
                &[&ids],
            )
            .await?
        {
            let id: String = r.try_get(0)?;
            let client = ClientId::parse(&id).map_err(|e| StoreError::corrupt("clients.id", e))?;
            out.push(SealedValue {
                holder_id: id.clone(),
                at: SealedAt::ClientIdNumber(client),
                sealed: decode_sealed(r.try_get(1)?, "clients.legal_rep_id_number")?,
            });
            if let Some(notes) = r.try_get::<_, Option<Vec<u8>>>(2)? {
                out.push(SealedValue {
                    holder_id: id,
                    at: SealedAt::ClientNotes(client),
                    sealed: decode_sealed(notes, "clients.notes")?,
                });
            }
        }
        for (sql, content) in [
            (
                "SELECT client_id, id, kind, sealed FROM client_records
                 WHERE client_id = ANY($1) AND sealed IS NOT NULL",
                false,
            ),
            (
                "SELECT r.client_id, r.id, r.kind, b.content FROM record_blobs b
                 JOIN client_records r ON r.id = b.record_id WHERE r.client_id = ANY($1)",
                true,
            ),
        ] {
            for r in c.query(sql, &[&ids]).await? {
                let id = RecordId::parse(r.try_get(1)?)
                    .map_err(|e| StoreError::corrupt("client_records.id", e))?;
                let kind = record_kind(r.try_get(2)?)?;
                let bytes: Vec<u8> = r.try_get(3)?;
                out.push(if content {
                    SealedValue {
                        holder_id: r.try_get(0)?,
                        at: SealedAt::RecordContent(kind, id),
                        sealed: decode_sealed(bytes, "record_blobs.content")?,
                    }
                } else {
                    SealedValue {
                        holder_id: r.try_get(0)?,
                        at: SealedAt::Record(kind, id),
                        sealed: decode_sealed(bytes, "client_records.sealed")?,
                    }
                });
            }
        }
        Ok(out)
    }

    async fn lead_values(&self, ids: &[String]) -> Result<Vec<SealedValue>> {
        let rows = self
            .client()
            .await?
            .query("SELECT id, sealed FROM leads WHERE id = ANY($1)", &[&ids])
            .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0)?;
                Ok(SealedValue {
                    at: SealedAt::Lead(
                        LeadId::parse(&id).map_err(|e| StoreError::corrupt("leads.id", e))?,
                    ),
                    holder_id: id,
                    sealed: decode_sealed(r.try_get(1)?, "leads.sealed")?,
                })
            })
            .collect()
    }
}

const FINISH_JOB: &str = "UPDATE key_jobs SET state = 'finished', phase = 'finished',
        cursor = NULL, finished_at = $3, updated_at = $3, lease_owner = NULL, lease_until = NULL
    WHERE id = $1 AND lease_owner = $2 AND state = 'running'";

/// [`HOLDER_COLUMNS`] of the client keys joined as `k`.
const HOLDER_COLUMNS_K: &str =
    "wrapped_dek, k.dek_version, k.previous_dek, k.previous_version, k.encryptions, k.rekeyed_at";

/// Starts a job unless any key job is running: one re-encryption or re-index at a time.
async fn insert_job(tx: &deadpool_postgres::Transaction<'_>, job: &KeyJob) -> Result<()> {
    let running: i64 = tx
        .query_one("SELECT count(*) FROM key_jobs WHERE state = 'running'", &[])
        .await?
        .try_get(0)?;
    if running > 0 {
        return Err(StoreError::Conflict(Unique::Other));
    }
    tx.execute(
        &format!(
            "INSERT INTO key_jobs ({KEY_JOB_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ),
        &[
            &job.id,
            &job.kind.as_str(),
            &job.state.as_str(),
            &job.phase,
            &job.cursor,
            &job.total,
            &job.holders_done,
            &job.values_done,
            &job.started_by,
            &job.started_at_ms,
            &job.updated_at_ms,
            &job.finished_at_ms,
            &job.lease_owner,
            &job.lease_until_ms,
        ],
    )
    .await
    .map_err(|e| match e.code() {
        // Another node started a job at the same moment.
        Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            StoreError::Conflict(Unique::Other)
        }
        _ => e.into(),
    })?;
    Ok(())
}

#[async_trait]
impl DataKeyStore for PgStore {
    async fn crypto_setting(&self, name: &str) -> Result<Option<String>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT value FROM crypto_settings WHERE name = $1",
                &[&name],
            )
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    async fn crypto_setting_init(&self, name: &str, value: &str) -> Result<String> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO crypto_settings (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO NOTHING",
            &[&name, &value],
        )
        .await?;
        Ok(c.query_one(
            "SELECT value FROM crypto_settings WHERE name = $1",
            &[&name],
        )
        .await?
        .try_get(0)?)
    }

    async fn key_holders_count(&self, holder: KeyHolder) -> Result<i64> {
        let (table, _) = holder.key_table();
        Ok(self
            .client()
            .await?
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .try_get(0)?)
    }

    async fn key_holders(
        &self,
        holder: KeyHolder,
        filter: HolderFilter,
        limit: u32,
    ) -> Result<Vec<HolderKeys>> {
        let (_, id) = holder.key_table();
        let limit = i64::from(limit);
        match &filter {
            HolderFilter::After(after) => {
                let sql = filter.sql(id, "$1::TEXT", "$2");
                self.holders(holder, &sql, &[after, &limit]).await
            }
            HolderFilter::Worn(n) | HolderFilter::WithPreviousBefore(n) => {
                let sql = filter.sql(id, "$1", "$2");
                self.holders(holder, &sql, &[n, &limit]).await
            }
        }
    }

    async fn sealed_values(&self, holder: KeyHolder, ids: Vec<String>) -> Result<Vec<SealedValue>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match holder {
            KeyHolder::Client => self.client_values(&ids).await,
            KeyHolder::Lead => self.lead_values(&ids).await,
        }
    }

    async fn data_keys_replace(
        &self,
        holder: KeyHolder,
        replacements: Vec<KeyReplacement>,
        now_ms: i64,
        event: Option<AuditEvent>,
    ) -> Result<Vec<String>> {
        let (table, id) = holder.key_table();
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let stmt = tx
            .prepare(&format!(
                "UPDATE {table} SET previous_dek = wrapped_dek, previous_version = dek_version,
                     wrapped_dek = $1, dek_version = $2, encryptions = 0, rekeyed_at = $3
                 WHERE {id} = $4 AND wrapped_dek = $5 AND previous_dek IS NULL
                 AND dek_version < $2"
            ))
            .await?;
        let mut replaced = Vec::new();
        for r in replacements {
            let n = tx
                .execute(
                    &stmt,
                    &[
                        &r.next.wrapped.as_bytes(),
                        &i64::from(r.next.version.0),
                        &now_ms,
                        &r.id,
                        &r.expected.as_bytes(),
                    ],
                )
                .await?;
            if n == 1 {
                replaced.push(r.id);
            }
        }
        if let (Some(event), false) = (&event, replaced.is_empty()) {
            insert_event(&tx, &self.chain, event).await?;
        }
        tx.commit().await?;
        Ok(replaced)
    }

    async fn sealed_values_swap(&self, swaps: Vec<SealedSwap>) -> Result<u64> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut replaced = 0u64;
        for swap in &swaps {
            let (table, column, id) = swap.at.columns();
            let stmt = tx
                .prepare_cached(&format!(
                    "UPDATE {table} SET {column} = $1 WHERE {id} = $2 AND {column} = $3"
                ))
                .await?;
            let n = tx
                .execute(
                    &stmt,
                    &[
                        &swap.new.as_bytes(),
                        &swap.at.row_id(),
                        &swap.old.as_bytes(),
                    ],
                )
                .await?;
            if let Some(holder) = swap.at.holder() {
                count_encryptions(&tx, holder, &swap.holder_id, n as i64).await?;
            }
            replaced += n;
        }
        tx.commit().await?;
        Ok(replaced)
    }

    async fn previous_keys_drop(
        &self,
        holder: KeyHolder,
        holders: Vec<(String, KeyVersion)>,
    ) -> Result<u64> {
        let sql = match holder {
            KeyHolder::Client => DROP_CLIENT_PREVIOUS,
            KeyHolder::Lead => DROP_LEAD_PREVIOUS,
        };
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let stmt = tx.prepare(sql).await?;
        let mut dropped = 0u64;
        for (id, version) in &holders {
            dropped += tx
                .execute(
                    &stmt,
                    &[id, &version_bytes(*version), &i64::from(version.0)],
                )
                .await?;
        }
        tx.commit().await?;
        Ok(dropped)
    }

    async fn key_job_start(&self, job: KeyJob, event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        insert_job(&tx, &job).await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mfa_sealed_values(&self) -> Result<Vec<SealedValue>> {
        let c = self.client().await?;
        let mut out = Vec::new();
        for (sql, column) in [
            (
                "SELECT user_id, totp_secret, NULL::text FROM user_mfa",
                "user_mfa.totp_secret",
            ),
            (
                "SELECT user_id, address, channel FROM otp_factors WHERE address IS NOT NULL",
                "otp_factors.address",
            ),
            (
                "SELECT user_id, pending_address, channel FROM otp_factors
                 WHERE pending_address IS NOT NULL",
                "otp_factors.pending_address",
            ),
        ] {
            for r in c.query(sql, &[]).await? {
                let user: String = r.try_get(0)?;
                let id = zf_domain::UserId::parse(&user)
                    .map_err(|e| StoreError::corrupt("user_id", e))?;
                let channel: Option<String> = r.try_get(2)?;
                out.push(SealedValue {
                    at: crate::data_keys::mfa_place(column, id, channel.as_deref())?,
                    holder_id: user,
                    sealed: decode_sealed(r.try_get(1)?, column)?,
                });
            }
        }
        Ok(out)
    }

    async fn mfa_key_replace(
        &self,
        key_name: &str,
        wrapped: WrappedKey,
        from: u32,
        to: u32,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let setting = |rows: Vec<Row>| -> Result<Option<String>> {
            Ok(match rows.first() {
                Some(r) => Some(r.try_get(0)?),
                None => None,
            })
        };
        let get = "SELECT value FROM crypto_settings WHERE name = $1 FOR UPDATE";
        let current =
            setting(tx.query(get, &[&MFA_KEY_VERSION]).await?)?.unwrap_or_else(|| "1".to_owned());
        let previous = setting(tx.query(get, &[&MFA_KEY_PREVIOUS]).await?)?;
        if current != from.to_string() || previous.is_some() {
            return Err(StoreError::Conflict(Unique::Other));
        }
        tx.execute(
            "INSERT INTO system_keys (name, wrapped, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET wrapped = excluded.wrapped,
                 created_at = excluded.created_at",
            &[&key_name, &wrapped.as_bytes(), &now_ms],
        )
        .await?;
        let set = "INSERT INTO crypto_settings (name, value) VALUES ($1, $2)
                   ON CONFLICT (name) DO UPDATE SET value = excluded.value";
        tx.execute(set, &[&MFA_KEY_VERSION, &to.to_string()])
            .await?;
        tx.execute(set, &[&MFA_KEY_PREVIOUS, &from.to_string()])
            .await?;
        tx.execute(set, &[&MFA_KEY_REPLACED_AT, &now_ms.to_string()])
            .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mfa_key_drop_previous(&self, previous: u32, key_name: &str) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let bytes = version_bytes(KeyVersion(previous));
        let under: i64 = tx
            .query_one(
                "SELECT (SELECT count(*) FROM user_mfa WHERE substring(totp_secret from 3 for 4) = $1)
                      + (SELECT count(*) FROM otp_factors
                         WHERE substring(address from 3 for 4) = $1
                            OR substring(pending_address from 3 for 4) = $1)",
                &[&bytes],
            )
            .await?
            .try_get(0)?;
        if under > 0 {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM crypto_settings WHERE name IN ($1, $2)",
            &[&MFA_KEY_PREVIOUS, &MFA_KEY_REPLACED_AT],
        )
        .await?;
        tx.execute("DELETE FROM system_keys WHERE name = $1", &[&key_name])
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn system_key_get(&self, name: &str) -> Result<Option<WrappedKey>> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT wrapped FROM system_keys WHERE name = $1", &[&name])
            .await?;
        row.map(|r| {
            WrappedKey::from_bytes(r.try_get::<_, Vec<u8>>(0)?)
                .map_err(|e| StoreError::corrupt("system_keys", e))
        })
        .transpose()
    }

    async fn blind_index_rotation_start(
        &self,
        rotation: BlindIndexRotation,
        job: KeyJob,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Serialises rotations: a concurrent start waits here and then sees this one's settings.
        tx.execute(
            "LOCK TABLE crypto_settings IN SHARE ROW EXCLUSIVE MODE",
            &[],
        )
        .await?;
        let setting = |name: &'static str| {
            let tx = &tx;
            async move {
                Ok::<_, StoreError>(
                    tx.query_opt(
                        "SELECT value FROM crypto_settings WHERE name = $1",
                        &[&name],
                    )
                    .await?
                    .map(|r| r.try_get::<_, String>(0))
                    .transpose()?,
                )
            }
        };
        let current = setting(BLIND_INDEX_VERSION)
            .await?
            .unwrap_or_else(|| "1".to_owned());
        if current != rotation.from.to_string() || setting(BLIND_INDEX_PREVIOUS).await?.is_some() {
            return Err(StoreError::Conflict(Unique::Other));
        }
        insert_job(&tx, &job).await?;
        tx.execute(
            "INSERT INTO system_keys (name, wrapped, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET wrapped = excluded.wrapped,
                 created_at = excluded.created_at",
            &[&rotation.key_name, &rotation.wrapped.as_bytes(), &now_ms],
        )
        .await?;
        let set = tx
            .prepare_cached(
                "INSERT INTO crypto_settings (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .await?;
        tx.execute(&set, &[&BLIND_INDEX_VERSION, &rotation.to.to_string()])
            .await?;
        tx.execute(&set, &[&BLIND_INDEX_PREVIOUS, &rotation.from.to_string()])
            .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn blind_index_rotation_finish(
        &self,
        id: &str,
        owner: &str,
        previous: u32,
        delete_key: Option<String>,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if tx.execute(FINISH_JOB, &[&id, &owner, &now_ms]).await? != 1 {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM crypto_settings WHERE name = $1 AND value = $2",
            &[&BLIND_INDEX_PREVIOUS, &previous.to_string()],
        )
        .await?;
        if let Some(name) = delete_key {
            tx.execute("DELETE FROM system_keys WHERE name = $1", &[&name])
                .await?;
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn reindex_clients_after(
        &self,
        after: Option<ClientId>,
        kinds: Vec<RecordKind>,
        limit: u32,
    ) -> Result<Vec<ReindexClient>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT c.id, c.legal_rep_id_number, c.legal_rep_id_index, k.{HOLDER_COLUMNS_K}
                     FROM clients c JOIN client_keys k ON k.client_id = c.id
                     WHERE ($1::TEXT IS NULL OR c.id > $1) ORDER BY c.id LIMIT $2"
                ),
                &[&after.map(|a| a.to_string()), &i64::from(limit)],
            )
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            out.push(reindex_client(
                r.try_get(1)?,
                r.try_get(2)?,
                HolderColumns {
                    id: r.try_get(0)?,
                    wrapped_dek: r.try_get(3)?,
                    dek_version: r.try_get(4)?,
                    previous_dek: r.try_get(5)?,
                    previous_version: r.try_get(6)?,
                    encryptions: r.try_get(7)?,
                    rekeyed_at_ms: r.try_get(8)?,
                },
            )?);
        }
        if out.is_empty() || kinds.is_empty() {
            return Ok(out);
        }
        let ids: Vec<String> = out.iter().map(|c| c.id.to_string()).collect();
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let rows = c
            .query(
                "SELECT r.client_id, r.id, r.kind, r.sealed, i.field, i.token
                 FROM client_records r LEFT JOIN record_index i ON i.record_id = r.id
                 WHERE r.client_id = ANY($1) AND r.kind = ANY($2) AND r.sealed IS NOT NULL
                 ORDER BY r.client_id, r.id",
                &[&ids, &kinds],
            )
            .await?;
        let records = rows
            .iter()
            .map(|r| {
                Ok(RecordTokenColumns {
                    client_id: r.try_get(0)?,
                    id: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    sealed: r.try_get(3)?,
                    field: r.try_get(4)?,
                    token: r.try_get(5)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        attach_records(&mut out, records)?;
        Ok(out)
    }

    async fn tokens_write(&self, writes: Vec<TokenWrite>) -> Result<u64> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut written = 0u64;
        for w in writes {
            written += match w {
                TokenWrite::Client {
                    id,
                    id_number,
                    token,
                } => {
                    tx.execute(
                        "UPDATE clients SET legal_rep_id_index = $1
                         WHERE id = $2 AND legal_rep_id_number = $3",
                        &[&token.as_bytes(), &id.to_string(), &id_number.as_bytes()],
                    )
                    .await?
                }
                TokenWrite::Record { id, sealed, tokens } => {
                    let id = id.to_string();
                    // Locks the record, so a concurrent change of it waits for this write.
                    let unchanged = tx
                        .query_opt(
                            "SELECT 1 FROM client_records WHERE id = $1 AND sealed = $2
                             FOR UPDATE",
                            &[&id, &sealed.as_bytes()],
                        )
                        .await?
                        .is_some();
                    if !unchanged {
                        continue;
                    }
                    tx.execute("DELETE FROM record_index WHERE record_id = $1", &[&id])
                        .await?;
                    for t in &tokens {
                        tx.execute(
                            "INSERT INTO record_index (field, token, record_id) VALUES ($1, $2, $3)",
                            &[&t.field, &t.token.as_bytes(), &id],
                        )
                        .await?;
                    }
                    tokens.len() as u64
                }
                TokenWrite::Lead { id, sealed, token } => {
                    tx.execute(
                        "UPDATE leads SET mobile_index = $1 WHERE id = $2 AND sealed = $3",
                        &[
                            &token.as_ref().map(|t| t.as_bytes().to_vec()),
                            &id.to_string(),
                            &sealed.as_bytes(),
                        ],
                    )
                    .await?
                }
            };
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn key_job_latest(&self) -> Result<Option<KeyJob>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {KEY_JOB_COLUMNS} FROM key_jobs
                     ORDER BY state = 'running' DESC, started_at DESC LIMIT 1"
                ),
                &[],
            )
            .await?;
        row.as_ref().map(job_from).transpose()
    }

    async fn key_job_claim(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE key_jobs SET lease_owner = $2, lease_until = $4, updated_at = $3
                 WHERE id = $1 AND state = 'running'
                 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < $3)",
                &[&id, &owner, &now_ms, &lease_until_ms],
            )
            .await?
            == 1)
    }

    async fn key_job_progress(&self, id: &str, owner: &str, p: KeyJobProgress) -> Result<bool> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE key_jobs SET phase = $3, cursor = $4, holders_done = holders_done + $5,
                     values_done = values_done + $6, updated_at = $7, lease_until = $8
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                &[
                    &id,
                    &owner,
                    &p.phase,
                    &p.cursor,
                    &p.holders,
                    &p.values,
                    &p.now_ms,
                    &p.lease_until_ms,
                ],
            )
            .await?
            == 1)
    }

    async fn key_job_finish(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx.execute(FINISH_JOB, &[&id, &owner, &now_ms]).await?;
        if n == 1 {
            insert_event(&tx, &self.chain, &event).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }
}
