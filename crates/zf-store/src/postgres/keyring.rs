//! [`KeyringStore`] on PostgreSQL.

use async_trait::async_trait;
use zf_audit::AuditEvent;
use zf_crypto::{KeyVersion, WrappedKey};

use super::{insert_event, PgStore};
use crate::keyring::kek_version_row;
use crate::{KekVersionRow, KeySwap, KeyTable, KeyringStore, Result, StoreError, Unique};

#[async_trait]
impl KeyringStore for PgStore {
    async fn kek_versions(&self) -> Result<Vec<KekVersionRow>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT version, state, created_at, retired_at FROM kek_versions ORDER BY version",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| kek_version_row(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))
            .collect()
    }

    async fn kek_versions_init(&self, now_ms: i64) -> Result<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO kek_versions (version, state, created_at)
                 SELECT 1, 'active', $1 WHERE NOT EXISTS (SELECT 1 FROM kek_versions)
                 ON CONFLICT (version) DO NOTHING",
                &[&now_ms],
            )
            .await?;
        Ok(())
    }

    async fn kek_version_add(
        &self,
        version: KeyVersion,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "INSERT INTO kek_versions (version, state, created_at) VALUES ($1, 'active', $2)
                 ON CONFLICT (version) DO NOTHING",
                &[&i64::from(version.0), &now_ms],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Conflict(Unique::Other));
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn kek_version_retire(
        &self,
        version: KeyVersion,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "UPDATE kek_versions SET state = 'retired', retired_at = $2
                 WHERE version = $1 AND state = 'active'",
                &[&i64::from(version.0), &now_ms],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn wrapped_keys_after(
        &self,
        table: KeyTable,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<(String, WrappedKey)>> {
        let (t, id, key) = table.columns();
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {id}, {key} FROM {t} WHERE ($1::TEXT IS NULL OR {id} > $1)
                     AND {key} IS NOT NULL ORDER BY {id} LIMIT $2",
                ),
                &[&after, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let wrapped = WrappedKey::from_bytes(r.try_get(1)?)
                    .map_err(|e| StoreError::corrupt("wrapped key", e))?;
                Ok((r.try_get(0)?, wrapped))
            })
            .collect()
    }

    async fn wrapped_keys_swap(
        &self,
        table: KeyTable,
        swaps: Vec<KeySwap>,
        event: AuditEvent,
    ) -> Result<u64> {
        let (t, id, key) = table.columns();
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let stmt = tx
            .prepare(&format!(
                "UPDATE {t} SET {key} = $1 WHERE {id} = $2 AND {key} = $3",
            ))
            .await?;
        let mut replaced = 0u64;
        for swap in &swaps {
            replaced += tx
                .execute(
                    &stmt,
                    &[&swap.new.as_bytes(), &swap.id, &swap.old.as_bytes()],
                )
                .await?;
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(replaced)
    }
}
