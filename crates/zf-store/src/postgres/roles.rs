//! [`RoleStore`] on PostgreSQL.

use async_trait::async_trait;
use zf_audit::AuditEvent;
use zf_domain::Username;
use zf_policy::{CustomRole, HeldRole, RoleName};

use super::{insert_event, map_unique, PgStore};
use crate::rows::decode;
use crate::sqlite::roles::{columns, definition_json};
use crate::{CustomRoleRow, Result, RoleStore, StoreError};

#[async_trait]
impl RoleStore for PgStore {
    async fn custom_roles(&self) -> Result<Vec<CustomRoleRow>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT r.name, r.definition, r.version, r.created_at, r.updated_at,
                    (SELECT COUNT(*) FROM users u WHERE u.custom_role = r.name)
                 FROM custom_roles r ORDER BY r.name",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(CustomRoleRow {
                    role: decode::custom_role_from(r.try_get(0)?, r.try_get(1)?)?,
                    version: r.try_get(2)?,
                    created_at_ms: r.try_get(3)?,
                    updated_at_ms: r.try_get(4)?,
                    holders: r.try_get(5)?,
                })
            })
            .collect()
    }

    async fn custom_role_put(
        &self,
        role: &CustomRole,
        version: Option<i64>,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<i64> {
        let name = role.name().as_str();
        let definition = definition_json(role)?;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let next = match version {
            None => {
                tx.execute(
                    "INSERT INTO custom_roles (name, definition, created_at, updated_at, version)
                     VALUES ($1, $2, $3, $3, 1)",
                    &[&name, &definition, &now_ms],
                )
                .await
                .map_err(map_unique)?;
                1
            }
            Some(expected) => {
                let n = tx
                    .execute(
                        "UPDATE custom_roles SET definition = $2, updated_at = $3, version = version + 1
                         WHERE name = $1 AND version = $4",
                        &[&name, &definition, &now_ms, &expected],
                    )
                    .await?;
                if n == 0 {
                    let exists = tx
                        .query_opt("SELECT 1 FROM custom_roles WHERE name = $1", &[&name])
                        .await?;
                    return Err(if exists.is_some() {
                        StoreError::VersionConflict
                    } else {
                        StoreError::NotFound
                    });
                }
                expected + 1
            }
        };
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(next)
    }

    async fn custom_role_delete(&self, name: &RoleName, event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Locks the role's row first, so a concurrent grant of it waits for the deletion.
        let Some(_) = tx
            .query_opt(
                "SELECT 1 FROM custom_roles WHERE name = $1 FOR UPDATE",
                &[&name.as_str()],
            )
            .await?
        else {
            return Err(StoreError::NotFound);
        };
        let holders: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM users WHERE custom_role = $1",
                &[&name.as_str()],
            )
            .await?
            .try_get(0)?;
        if holders > 0 {
            return Err(StoreError::RoleHeld(holders));
        }
        tx.execute(
            "DELETE FROM custom_roles WHERE name = $1",
            &[&name.as_str()],
        )
        .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn user_set_role(
        &self,
        username: &Username,
        from: &HeldRole,
        to: &HeldRole,
        event: AuditEvent,
    ) -> Result<()> {
        let (from_base, from_custom) = columns(from);
        let (to_base, to_custom) = columns(to);
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "UPDATE users SET role = $1, custom_role = $2
                 WHERE username = $3 AND role = $4 AND custom_role IS NOT DISTINCT FROM $5",
                &[
                    &to_base,
                    &to_custom,
                    &username.as_str(),
                    &from_base,
                    &from_custom,
                ],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.execute(
            "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = $1)",
            &[&username.as_str()],
        )
        .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn user_set_team(
        &self,
        username: &Username,
        team: Option<&str>,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "UPDATE users SET team = $1 WHERE username = $2",
                &[&team, &username.as_str()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }
}
