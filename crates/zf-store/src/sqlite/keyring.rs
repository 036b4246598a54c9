//! [`KeyringStore`] on SQLite.

use async_trait::async_trait;
use rusqlite::params;
use zf_audit::AuditEvent;
use zf_crypto::{KeyVersion, WrappedKey};

use super::{insert_event, SqliteStore};
use crate::keyring::kek_version_row;
use crate::{KekVersionRow, KeySwap, KeyTable, KeyringStore, Result, StoreError, Unique};

#[async_trait]
impl KeyringStore for SqliteStore {
    async fn kek_versions(&self) -> Result<Vec<KekVersionRow>> {
        self.run(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT version, state, created_at, retired_at FROM kek_versions ORDER BY version",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })?;
            rows.map(|row| {
                let (v, s, c, r) = row?;
                kek_version_row(v, &s, c, r)
            })
            .collect()
        })
        .await
    }

    async fn kek_versions_init(&self, now_ms: i64) -> Result<()> {
        self.write(move |tx, _| {
            tx.execute(
                "INSERT INTO kek_versions (version, state, created_at)
                 SELECT 1, 'active', ?1 WHERE NOT EXISTS (SELECT 1 FROM kek_versions)",
                [now_ms],
            )?;
            Ok(())
        })
        .await
    }

    async fn kek_version_add(
        &self,
        version: KeyVersion,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            let n = tx.execute(
                "INSERT INTO kek_versions (version, state, created_at) VALUES (?1, 'active', ?2)
                 ON CONFLICT (version) DO NOTHING",
                params![i64::from(version.0), now_ms],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict(Unique::Other));
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn kek_version_retire(
        &self,
        version: KeyVersion,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            let n = tx.execute(
                "UPDATE kek_versions SET state = 'retired', retired_at = ?2
                 WHERE version = ?1 AND state = 'active'",
                params![i64::from(version.0), now_ms],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn wrapped_keys_after(
        &self,
        table: KeyTable,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<(String, WrappedKey)>> {
        let (t, id, key) = table.columns();
        let sql = format!(
            "SELECT {id}, {key} FROM {t} WHERE (?1 IS NULL OR {id} > ?1) AND {key} IS NOT NULL
             ORDER BY {id} LIMIT ?2",
        );
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![after, limit], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            rows.map(|row| {
                let (id, bytes) = row?;
                let wrapped = WrappedKey::from_bytes(bytes)
                    .map_err(|e| StoreError::corrupt("wrapped key", e))?;
                Ok((id, wrapped))
            })
            .collect()
        })
        .await
    }

    async fn wrapped_keys_swap(
        &self,
        table: KeyTable,
        swaps: Vec<KeySwap>,
        event: AuditEvent,
    ) -> Result<u64> {
        let (t, id, key) = table.columns();
        let sql = format!("UPDATE {t} SET {key} = ?1 WHERE {id} = ?2 AND {key} = ?3",);
        self.write(move |tx, chain| {
            let mut stmt = tx.prepare_cached(&sql)?;
            let mut replaced = 0u64;
            for swap in &swaps {
                replaced +=
                    stmt.execute(params![swap.new.as_bytes(), swap.id, swap.old.as_bytes()])?
                        as u64;
            }
            insert_event(tx, chain, &event)?;
            Ok(replaced)
        })
        .await
    }
}
