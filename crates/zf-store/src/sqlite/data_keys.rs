//! [`DataKeyStore`] on SQLite.

use async_trait::async_trait;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use zf_audit::AuditEvent;
use zf_crypto::{KeyVersion, WrappedKey};
use zf_domain::{ClientId, LeadId, RecordId};

use super::{insert_event, SqliteStore};
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

fn holders(
    c: &Connection,
    holder: KeyHolder,
    condition: &str,
    values: Vec<rusqlite::types::Value>,
) -> Result<Vec<HolderKeys>> {
    let (table, id) = holder.key_table();
    let sql = format!("SELECT {id}, {HOLDER_COLUMNS} FROM {table} WHERE {condition}");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), |r| {
        Ok(HolderColumns {
            id: r.get(0)?,
            wrapped_dek: r.get(1)?,
            dek_version: r.get(2)?,
            previous_dek: r.get(3)?,
            previous_version: r.get(4)?,
            encryptions: r.get(5)?,
            rekeyed_at_ms: r.get(6)?,
        })
    })?;
    rows.map(|row| decode_holder(holder, row?)).collect()
}

/// Adds `n` to the encryption counter of the holder's current data key, in the writing
/// transaction: the counter is what decides when a key is replaced, so it is never behind.
pub(crate) fn count_encryptions(
    tx: &Connection,
    holder: KeyHolder,
    id: &str,
    n: i64,
) -> Result<()> {
    if n > 0 {
        let (table, column) = holder.key_table();
        tx.prepare_cached(&format!(
            "UPDATE {table} SET encryptions = encryptions + ?1 WHERE {column} = ?2"
        ))?
        .execute(params![n, id])?;
    }
    Ok(())
}

fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse<T>(
    text: &str,
    column: &'static str,
    parse: impl Fn(&str) -> std::result::Result<T, zf_domain::IdParseError>,
) -> Result<T> {
    parse(text).map_err(|e| StoreError::corrupt(column, e))
}

fn record_kind(text: &str) -> Result<RecordKind> {
    RecordKind::parse(text).ok_or_else(|| StoreError::corrupt("client_records.kind", text))
}

fn job_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyJobColumns> {
    Ok(KeyJobColumns {
        id: r.get(0)?,
        kind: r.get(1)?,
        state: r.get(2)?,
        phase: r.get(3)?,
        cursor: r.get(4)?,
        total: r.get(5)?,
        holders_done: r.get(6)?,
        values_done: r.get(7)?,
        started_by: r.get(8)?,
        started_at_ms: r.get(9)?,
        updated_at_ms: r.get(10)?,
        finished_at_ms: r.get(11)?,
        lease_owner: r.get(12)?,
        lease_until_ms: r.get(13)?,
    })
}

/// Values of these clients: ID numbers, notes, records' sealed parts and document contents.
fn client_values(c: &Connection, ids: &[String]) -> Result<Vec<SealedValue>> {
    let list = placeholders(ids.len());
    let mut out = Vec::new();
    let mut stmt = c.prepare(&format!(
        "SELECT id, legal_rep_id_number, notes FROM clients WHERE id IN ({list})"
    ))?;
    let rows = stmt.query_map(params_from_iter(ids), |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, Option<Vec<u8>>>(2)?,
        ))
    })?;
    for row in rows {
        let (id, number, notes) = row?;
        let client = parse(&id, "clients.id", ClientId::parse)?;
        out.push(SealedValue {
            holder_id: id.clone(),
            at: SealedAt::ClientIdNumber(client),
            sealed: decode_sealed(number, "clients.legal_rep_id_number")?,
        });
        if let Some(notes) = notes {
            out.push(SealedValue {
                holder_id: id,
                at: SealedAt::ClientNotes(client),
                sealed: decode_sealed(notes, "clients.notes")?,
            });
        }
    }
    for (sql, content) in [
        (
            format!(
                "SELECT client_id, id, kind, sealed FROM client_records
                 WHERE client_id IN ({list}) AND sealed IS NOT NULL"
            ),
            false,
        ),
        (
            format!(
                "SELECT r.client_id, r.id, r.kind, b.content FROM record_blobs b
                 JOIN client_records r ON r.id = b.record_id WHERE r.client_id IN ({list})"
            ),
            true,
        ),
    ] {
        let mut stmt = c.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(ids), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?;
        for row in rows {
            let (client, id, kind, bytes) = row?;
            let id = parse(&id, "client_records.id", RecordId::parse)?;
            let kind = record_kind(&kind)?;
            out.push(if content {
                SealedValue {
                    holder_id: client,
                    at: SealedAt::RecordContent(kind, id),
                    sealed: decode_sealed(bytes, "record_blobs.content")?,
                }
            } else {
                SealedValue {
                    holder_id: client,
                    at: SealedAt::Record(kind, id),
                    sealed: decode_sealed(bytes, "client_records.sealed")?,
                }
            });
        }
    }
    Ok(out)
}

fn lead_values(c: &Connection, ids: &[String]) -> Result<Vec<SealedValue>> {
    let mut stmt = c.prepare(&format!(
        "SELECT id, sealed FROM leads WHERE id IN ({})",
        placeholders(ids.len())
    ))?;
    let rows = stmt.query_map(params_from_iter(ids), |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    rows.map(|row| {
        let (id, sealed) = row?;
        Ok(SealedValue {
            at: SealedAt::Lead(parse(&id, "leads.id", LeadId::parse)?),
            holder_id: id,
            sealed: decode_sealed(sealed, "leads.sealed")?,
        })
    })
    .collect()
}

/// Drops a client's previous key unless a value is sealed under anything but `?2` (the current
/// version's header bytes); `?3` is the current version.
const DROP_CLIENT_PREVIOUS: &str = "UPDATE client_keys
    SET previous_dek = NULL, previous_version = NULL
    WHERE client_id = ?1 AND previous_dek IS NOT NULL AND dek_version = ?3
    AND NOT EXISTS (SELECT 1 FROM clients c WHERE c.id = ?1
        AND (substr(c.legal_rep_id_number, 3, 4) <> ?2
             OR (c.notes IS NOT NULL AND substr(c.notes, 3, 4) <> ?2)))
    AND NOT EXISTS (SELECT 1 FROM client_records r WHERE r.client_id = ?1
        AND r.sealed IS NOT NULL AND substr(r.sealed, 3, 4) <> ?2)
    AND NOT EXISTS (SELECT 1 FROM client_records r JOIN record_blobs b ON b.record_id = r.id
        WHERE r.client_id = ?1 AND substr(b.content, 3, 4) <> ?2)";

const DROP_LEAD_PREVIOUS: &str = "UPDATE leads
    SET previous_dek = NULL, previous_version = NULL
    WHERE id = ?1 AND previous_dek IS NOT NULL AND dek_version = ?3
    AND substr(sealed, 3, 4) = ?2";

const FINISH_JOB: &str = "UPDATE key_jobs SET state = 'finished', phase = 'finished',
        cursor = NULL, finished_at = ?3, updated_at = ?3, lease_owner = NULL, lease_until = NULL
    WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'";

/// [`HOLDER_COLUMNS`] of the client keys joined as `k`.
const HOLDER_COLUMNS_K: &str =
    "wrapped_dek, k.dek_version, k.previous_dek, k.previous_version, k.encryptions, k.rekeyed_at";

/// Starts a job unless any key job is running: one re-encryption or re-index at a time.
fn insert_job(tx: &Connection, job: &KeyJob) -> Result<()> {
    let running: i64 = tx.query_row(
        "SELECT count(*) FROM key_jobs WHERE state = 'running'",
        [],
        |r| r.get(0),
    )?;
    if running > 0 {
        return Err(StoreError::Conflict(Unique::Other));
    }
    tx.execute(
        &format!(
            "INSERT INTO key_jobs ({KEY_JOB_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ),
        params![
            job.id,
            job.kind.as_str(),
            job.state.as_str(),
            job.phase,
            job.cursor,
            job.total,
            job.holders_done,
            job.values_done,
            job.started_by,
            job.started_at_ms,
            job.updated_at_ms,
            job.finished_at_ms,
            job.lease_owner,
            job.lease_until_ms,
        ],
    )?;
    Ok(())
}

#[async_trait]
impl DataKeyStore for SqliteStore {
    async fn crypto_setting(&self, name: &str) -> Result<Option<String>> {
        let name = name.to_owned();
        self.run(move |c| {
            let mut stmt = c.prepare_cached("SELECT value FROM crypto_settings WHERE name = ?1")?;
            let mut rows = stmt.query([name])?;
            Ok(match rows.next()? {
                Some(r) => Some(r.get(0)?),
                None => None,
            })
        })
        .await
    }

    async fn crypto_setting_init(&self, name: &str, value: &str) -> Result<String> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.write(move |tx, _| {
            tx.execute(
                "INSERT INTO crypto_settings (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO NOTHING",
                params![name, value],
            )?;
            Ok(tx.query_row(
                "SELECT value FROM crypto_settings WHERE name = ?1",
                [name],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn key_holders_count(&self, holder: KeyHolder) -> Result<i64> {
        let (table, _) = holder.key_table();
        let sql = format!("SELECT count(*) FROM {table}");
        self.run(move |c| Ok(c.query_row(&sql, [], |r| r.get(0))?))
            .await
    }

    async fn key_holders(
        &self,
        holder: KeyHolder,
        filter: HolderFilter,
        limit: u32,
    ) -> Result<Vec<HolderKeys>> {
        let (_, id) = holder.key_table();
        let condition = filter.sql(id, "?1", "?2");
        let first: rusqlite::types::Value = match filter {
            HolderFilter::After(after) => after.into(),
            HolderFilter::Worn(n) | HolderFilter::WithPreviousBefore(n) => n.into(),
        };
        self.run(move |c| holders(c, holder, &condition, vec![first, i64::from(limit).into()]))
            .await
    }

    async fn sealed_values(&self, holder: KeyHolder, ids: Vec<String>) -> Result<Vec<SealedValue>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move |c| match holder {
            KeyHolder::Client => client_values(c, &ids),
            KeyHolder::Lead => lead_values(c, &ids),
        })
        .await
    }

    async fn data_keys_replace(
        &self,
        holder: KeyHolder,
        replacements: Vec<KeyReplacement>,
        now_ms: i64,
        event: Option<AuditEvent>,
    ) -> Result<Vec<String>> {
        let (table, id) = holder.key_table();
        let sql = format!(
            "UPDATE {table} SET previous_dek = wrapped_dek, previous_version = dek_version,
                 wrapped_dek = ?1, dek_version = ?2, encryptions = 0, rekeyed_at = ?3
             WHERE {id} = ?4 AND wrapped_dek = ?5 AND previous_dek IS NULL AND dek_version < ?2"
        );
        self.write(move |tx, chain| {
            let mut stmt = tx.prepare_cached(&sql)?;
            let mut replaced = Vec::new();
            for r in replacements {
                let n = stmt.execute(params![
                    r.next.wrapped.as_bytes(),
                    i64::from(r.next.version.0),
                    now_ms,
                    r.id,
                    r.expected.as_bytes(),
                ])?;
                if n == 1 {
                    replaced.push(r.id);
                }
            }
            if let (Some(event), false) = (&event, replaced.is_empty()) {
                insert_event(tx, chain, event)?;
            }
            Ok(replaced)
        })
        .await
    }

    async fn sealed_values_swap(&self, swaps: Vec<SealedSwap>) -> Result<u64> {
        self.write(move |tx, _| {
            let mut replaced = 0u64;
            for swap in &swaps {
                let (table, column, id) = swap.at.columns();
                let sql =
                    format!("UPDATE {table} SET {column} = ?1 WHERE {id} = ?2 AND {column} = ?3");
                let n = tx.prepare_cached(&sql)?.execute(params![
                    swap.new.as_bytes(),
                    swap.at.row_id(),
                    swap.old.as_bytes()
                ])?;
                if let Some(holder) = swap.at.holder() {
                    count_encryptions(tx, holder, &swap.holder_id, n as i64)?;
                }
                replaced += n as u64;
            }
            Ok(replaced)
        })
        .await
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
        self.write(move |tx, _| {
            let mut stmt = tx.prepare_cached(sql)?;
            let mut dropped = 0u64;
            for (id, version) in &holders {
                dropped +=
                    stmt.execute(params![id, version_bytes(*version), i64::from(version.0)])?
                        as u64;
            }
            Ok(dropped)
        })
        .await
    }

    async fn key_job_start(&self, job: KeyJob, event: AuditEvent) -> Result<()> {
        self.write(move |tx, chain| {
            insert_job(tx, &job)?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn mfa_sealed_values(&self) -> Result<Vec<SealedValue>> {
        self.run(move |c| {
            let mut out = Vec::new();
            for (sql, column) in [
                (
                    "SELECT user_id, totp_secret, NULL FROM user_mfa",
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
                let mut stmt = c.prepare_cached(sql)?;
                let rows = stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })?;
                for row in rows {
                    let (user, bytes, channel) = row?;
                    let id = parse(&user, "user_id", zf_domain::UserId::parse)?;
                    out.push(SealedValue {
                        at: crate::data_keys::mfa_place(column, id, channel.as_deref())?,
                        holder_id: user,
                        sealed: decode_sealed(bytes, column)?,
                    });
                }
            }
            Ok(out)
        })
        .await
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
        let key_name = key_name.to_owned();
        self.write(move |tx, chain| {
            let setting = |name: &str| -> Result<Option<String>> {
                Ok(tx
                    .query_row(
                        "SELECT value FROM crypto_settings WHERE name = ?1",
                        [name],
                        |r| r.get(0),
                    )
                    .optional()?)
            };
            let current = setting(MFA_KEY_VERSION)?.unwrap_or_else(|| "1".to_owned());
            if current != from.to_string() || setting(MFA_KEY_PREVIOUS)?.is_some() {
                return Err(StoreError::Conflict(Unique::Other));
            }
            tx.execute(
                "INSERT INTO system_keys (name, wrapped, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET wrapped = excluded.wrapped,
                     created_at = excluded.created_at",
                params![key_name, wrapped.as_bytes(), now_ms],
            )?;
            let mut set = tx.prepare_cached(
                "INSERT INTO crypto_settings (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )?;
            set.execute(params![MFA_KEY_VERSION, to.to_string()])?;
            set.execute(params![MFA_KEY_PREVIOUS, from.to_string()])?;
            set.execute(params![MFA_KEY_REPLACED_AT, now_ms.to_string()])?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn mfa_key_drop_previous(&self, previous: u32, key_name: &str) -> Result<bool> {
        let key_name = key_name.to_owned();
        self.write(move |tx, _| {
            let bytes = version_bytes(KeyVersion(previous));
            let under: i64 = tx.query_row(
                "SELECT (SELECT count(*) FROM user_mfa WHERE substr(totp_secret, 3, 4) = ?1)
                      + (SELECT count(*) FROM otp_factors
                         WHERE substr(address, 3, 4) = ?1 OR substr(pending_address, 3, 4) = ?1)",
                [&bytes],
                |r| r.get(0),
            )?;
            if under > 0 {
                return Ok(false);
            }
            tx.execute(
                "DELETE FROM crypto_settings WHERE name IN (?1, ?2)",
                params![MFA_KEY_PREVIOUS, MFA_KEY_REPLACED_AT],
            )?;
            tx.execute("DELETE FROM system_keys WHERE name = ?1", [key_name])?;
            Ok(true)
        })
        .await
    }

    async fn system_key_get(&self, name: &str) -> Result<Option<WrappedKey>> {
        let name = name.to_owned();
        self.run(move |c| {
            let bytes: Option<Vec<u8>> = c
                .query_row(
                    "SELECT wrapped FROM system_keys WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()?;
            bytes
                .map(|b| {
                    WrappedKey::from_bytes(b).map_err(|e| StoreError::corrupt("system_keys", e))
                })
                .transpose()
        })
        .await
    }

    async fn blind_index_rotation_start(
        &self,
        rotation: BlindIndexRotation,
        job: KeyJob,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            let setting = |name: &str| -> Result<Option<String>> {
                Ok(tx
                    .query_row(
                        "SELECT value FROM crypto_settings WHERE name = ?1",
                        [name],
                        |r| r.get(0),
                    )
                    .optional()?)
            };
            let current = setting(BLIND_INDEX_VERSION)?.unwrap_or_else(|| "1".to_owned());
            if current != rotation.from.to_string() || setting(BLIND_INDEX_PREVIOUS)?.is_some() {
                return Err(StoreError::Conflict(Unique::Other));
            }
            insert_job(tx, &job)?;
            tx.execute(
                "INSERT INTO system_keys (name, wrapped, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET wrapped = excluded.wrapped,
                     created_at = excluded.created_at",
                params![rotation.key_name, rotation.wrapped.as_bytes(), now_ms],
            )?;
            let mut set = tx.prepare_cached(
                "INSERT INTO crypto_settings (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )?;
            set.execute(params![BLIND_INDEX_VERSION, rotation.to.to_string()])?;
            set.execute(params![BLIND_INDEX_PREVIOUS, rotation.from.to_string()])?;
            insert_event(tx, chain, &event)
        })
        .await
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
        let (id, owner) = (id.to_owned(), owner.to_owned());
        self.write(move |tx, chain| {
            let n = tx.execute(FINISH_JOB, params![id, owner, now_ms])?;
            if n != 1 {
                return Ok(false);
            }
            tx.execute(
                "DELETE FROM crypto_settings WHERE name = ?1 AND value = ?2",
                params![BLIND_INDEX_PREVIOUS, previous.to_string()],
            )?;
            if let Some(name) = delete_key {
                tx.execute("DELETE FROM system_keys WHERE name = ?1", [name])?;
            }
            insert_event(tx, chain, &event)?;
            Ok(true)
        })
        .await
    }

    async fn reindex_clients_after(
        &self,
        after: Option<ClientId>,
        kinds: Vec<RecordKind>,
        limit: u32,
    ) -> Result<Vec<ReindexClient>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT c.id, c.legal_rep_id_number, c.legal_rep_id_index, k.{HOLDER_COLUMNS_K}
                 FROM clients c JOIN client_keys k ON k.client_id = c.id
                 WHERE (?1 IS NULL OR c.id > ?1) ORDER BY c.id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(
                params![after.map(|a| a.to_string()), i64::from(limit)],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        HolderColumns {
                            id: r.get(0)?,
                            wrapped_dek: r.get(3)?,
                            dek_version: r.get(4)?,
                            previous_dek: r.get(5)?,
                            previous_version: r.get(6)?,
                            encryptions: r.get(7)?,
                            rekeyed_at_ms: r.get(8)?,
                        },
                    ))
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (number, token, keys) = row?;
                out.push(reindex_client(number, token, keys)?);
            }
            if out.is_empty() || kinds.is_empty() {
                return Ok(out);
            }
            let ids: Vec<String> = out.iter().map(|c| c.id.to_string()).collect();
            let kind_names: Vec<String> = kinds.iter().map(|k| k.as_str().to_owned()).collect();
            let list = placeholders(ids.len());
            let kind_list = (ids.len() + 1..=ids.len() + kinds.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut stmt = c.prepare(&format!(
                "SELECT r.client_id, r.id, r.kind, r.sealed, i.field, i.token
                 FROM client_records r LEFT JOIN record_index i ON i.record_id = r.id
                 WHERE r.client_id IN ({list}) AND r.kind IN ({kind_list})
                 AND r.sealed IS NOT NULL ORDER BY r.client_id, r.id"
            ))?;
            let rows =
                stmt.query_map(params_from_iter(ids.iter().chain(kind_names.iter())), |r| {
                    Ok(RecordTokenColumns {
                        client_id: r.get(0)?,
                        id: r.get(1)?,
                        kind: r.get(2)?,
                        sealed: r.get(3)?,
                        field: r.get(4)?,
                        token: r.get(5)?,
                    })
                })?;
            let mut records = Vec::new();
            for row in rows {
                records.push(row?);
            }
            attach_records(&mut out, records)?;
            Ok(out)
        })
        .await
    }

    async fn tokens_write(&self, writes: Vec<TokenWrite>) -> Result<u64> {
        self.write(move |tx, _| {
            let mut written = 0u64;
            for w in writes {
                written += match w {
                    TokenWrite::Client {
                        id,
                        id_number,
                        token,
                    } => tx.prepare_cached(
                        "UPDATE clients SET legal_rep_id_index = ?1
                         WHERE id = ?2 AND legal_rep_id_number = ?3",
                    )?
                    .execute(params![
                        token.as_bytes(),
                        id.to_string(),
                        id_number.as_bytes()
                    ])? as u64,
                    TokenWrite::Record { id, sealed, tokens } => {
                        let unchanged = tx
                            .prepare_cached(
                                "SELECT 1 FROM client_records WHERE id = ?1 AND sealed = ?2",
                            )?
                            .exists(params![id.to_string(), sealed.as_bytes()])?;
                        if !unchanged {
                            continue;
                        }
                        tx.prepare_cached("DELETE FROM record_index WHERE record_id = ?1")?
                            .execute([id.to_string()])?;
                        let mut insert = tx.prepare_cached(
                            "INSERT INTO record_index (field, token, record_id) VALUES (?1, ?2, ?3)",
                        )?;
                        for t in &tokens {
                            insert.execute(params![t.field, t.token.as_bytes(), id.to_string()])?;
                        }
                        tokens.len() as u64
                    }
                    TokenWrite::Lead { id, sealed, token } => tx
                        .prepare_cached(
                            "UPDATE leads SET mobile_index = ?1 WHERE id = ?2 AND sealed = ?3",
                        )?
                        .execute(params![
                            token.as_ref().map(|t| t.as_bytes().to_vec()),
                            id.to_string(),
                            sealed.as_bytes()
                        ])? as u64,
                };
            }
            Ok(written)
        })
        .await
    }

    async fn key_job_latest(&self) -> Result<Option<KeyJob>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {KEY_JOB_COLUMNS} FROM key_jobs
                 ORDER BY state = 'running' DESC, started_at DESC LIMIT 1"
            ))?;
            let mut rows = stmt.query([])?;
            match rows.next()? {
                Some(r) => Ok(Some(decode_job(job_from(r)?)?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn key_job_claim(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool> {
        let (id, owner) = (id.to_owned(), owner.to_owned());
        self.write(move |tx, _| {
            Ok(tx.execute(
                "UPDATE key_jobs SET lease_owner = ?2, lease_until = ?4, updated_at = ?3
                 WHERE id = ?1 AND state = 'running'
                 AND (lease_owner IS NULL OR lease_owner = ?2 OR lease_until < ?3)",
                params![id, owner, now_ms, lease_until_ms],
            )? == 1)
        })
        .await
    }

    async fn key_job_progress(&self, id: &str, owner: &str, p: KeyJobProgress) -> Result<bool> {
        let (id, owner) = (id.to_owned(), owner.to_owned());
        self.write(move |tx, _| {
            Ok(tx.execute(
                "UPDATE key_jobs SET phase = ?3, cursor = ?4, holders_done = holders_done + ?5,
                     values_done = values_done + ?6, updated_at = ?7, lease_until = ?8
                 WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
                params![
                    id,
                    owner,
                    p.phase,
                    p.cursor,
                    p.holders,
                    p.values,
                    p.now_ms,
                    p.lease_until_ms
                ],
            )? == 1)
        })
        .await
    }

    async fn key_job_finish(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<bool> {
        let (id, owner) = (id.to_owned(), owner.to_owned());
        self.write(move |tx, chain| {
            let n = tx.execute(FINISH_JOB, params![id, owner, now_ms])?;
            if n == 1 {
                insert_event(tx, chain, &event)?;
            }
            Ok(n == 1)
        })
        .await
    }
}
