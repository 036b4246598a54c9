//! [`RoleStore`] on PostgreSQL.

use async_trait::async_trait;
use zf_audit::AuditEvent;
use zf_domain::Username;
use zf_policy::{CustomRole, HeldRole, RoleName};

use super::{insert_event, map_unique, PgStore};
use crate::roles::{ReassignmentColumns, REASSIGNMENT_COLUMNS, REASSIGNMENT_FROM};
use crate::rows::decode;
use crate::sqlite::roles::{columns, definition_json};
use crate::{
    CustomRoleRow, ReassignmentDecision, ReassignmentRequest, ReassignmentRow, ReassignmentStatus,
    Result, RoleStore, StoreError,
};

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
        reassignment: ReassignmentRequest,
    ) -> Result<Option<i64>> {
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
        let clients: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM clients
                 WHERE assigned_accountant = (SELECT id FROM users WHERE username = $1)",
                &[&username.as_str()],
            )
            .await?
            .try_get(0)?;
        if clients > 0 {
            // One open request per user: a second move before the first is decided leaves it.
            tx.execute(
                "INSERT INTO client_reassignments
                    (id, from_user, clients, requested_by, requested_at, reason, status)
                 SELECT $1, u.id, $2, $3, $4, $5, 'pending' FROM users u
                 WHERE u.username = $6 AND NOT EXISTS (SELECT 1 FROM client_reassignments r
                    WHERE r.from_user = u.id AND r.status = 'pending')",
                &[
                    &reassignment.id,
                    &clients,
                    &reassignment.requested_by,
                    &reassignment.at_ms,
                    &reassignment.reason,
                    &username.as_str(),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok((clients > 0).then_some(clients))
    }

    async fn reassignments(
        &self,
        status: Option<ReassignmentStatus>,
    ) -> Result<Vec<ReassignmentRow>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {REASSIGNMENT_COLUMNS} FROM {REASSIGNMENT_FROM}
                     WHERE $1::TEXT IS NULL OR r.status = $1 ORDER BY r.requested_at DESC, r.id"
                ),
                &[&status.map(ReassignmentStatus::as_str)],
            )
            .await?;
        rows.iter()
            .map(|r| reassignment_from(r)?.into_row())
            .collect()
    }

    async fn reassignment_decide(
        &self,
        id: &str,
        decision: ReassignmentDecision,
        event: AuditEvent,
    ) -> Result<ReassignmentRow> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT from_user FROM client_reassignments
                 WHERE id = $1 AND status = 'pending' FOR UPDATE",
                &[&id],
            )
            .await?
        else {
            return Err(StoreError::NotFound);
        };
        let from_user: String = row.try_get(0)?;
        let to_user = decision.to_user.map(|u| u.to_string());
        let moved = match &to_user {
            Some(to) => Some(
                tx.execute(
                    "UPDATE clients SET assigned_accountant = $1, updated_at = $2,
                        version = version + 1
                     WHERE assigned_accountant = $3",
                    &[to, &decision.at_ms, &from_user],
                )
                .await? as i64,
            ),
            None => None,
        };
        let status = if to_user.is_some() {
            "approved"
        } else {
            "rejected"
        };
        tx.execute(
            "UPDATE client_reassignments SET status = $2, to_user = $3, moved = $4,
                decided_by = $5, decided_at = $6, decision_reason = $7
             WHERE id = $1",
            &[
                &id,
                &status,
                &to_user,
                &moved,
                &decision.decided_by,
                &decision.at_ms,
                &decision.reason,
            ],
        )
        .await?;
        insert_event(&tx, &self.chain, &event).await?;
        let decided = tx
            .query_one(
                &format!("SELECT {REASSIGNMENT_COLUMNS} FROM {REASSIGNMENT_FROM} WHERE r.id = $1"),
                &[&id],
            )
            .await?;
        let decided = reassignment_from(&decided)?.into_row()?;
        tx.commit().await?;
        Ok(decided)
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

fn reassignment_from(r: &tokio_postgres::Row) -> Result<ReassignmentColumns> {
    Ok(ReassignmentColumns {
        id: r.try_get(0)?,
        from_user: r.try_get(1)?,
        from_username: r.try_get(2)?,
        clients: r.try_get(3)?,
        requested_by: r.try_get(4)?,
        requested_at_ms: r.try_get(5)?,
        reason: r.try_get(6)?,
        status: r.try_get(7)?,
        to_username: r.try_get(8)?,
        moved: r.try_get(9)?,
        decided_by: r.try_get(10)?,
        decided_at_ms: r.try_get(11)?,
        decision_reason: r.try_get(12)?,
    })
}
