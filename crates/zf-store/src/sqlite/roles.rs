//! [`RoleStore`] on SQLite.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};
use zf_audit::AuditEvent;
use zf_domain::Username;
use zf_policy::{CustomRole, HeldRole, RoleName};

use super::{insert_event, map_unique, SqliteStore};
use crate::roles::{ReassignmentColumns, REASSIGNMENT_COLUMNS, REASSIGNMENT_FROM};
use crate::rows::decode;
use crate::{
    CustomRoleRow, ReassignmentDecision, ReassignmentRequest, ReassignmentRow, ReassignmentStatus,
    Result, RoleStore, StoreError,
};

#[async_trait]
impl RoleStore for SqliteStore {
    async fn custom_roles(&self) -> Result<Vec<CustomRoleRow>> {
        self.run(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT r.name, r.definition, r.version, r.created_at, r.updated_at,
                    (SELECT COUNT(*) FROM users u WHERE u.custom_role = r.name)
                 FROM custom_roles r ORDER BY r.name",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?;
            rows.map(|row| {
                let (name, definition, version, created_at_ms, updated_at_ms, holders) = row?;
                Ok(CustomRoleRow {
                    role: decode::custom_role_from(&name, &definition)?,
                    version,
                    holders,
                    created_at_ms,
                    updated_at_ms,
                })
            })
            .collect()
        })
        .await
    }

    async fn custom_role_put(
        &self,
        role: &CustomRole,
        version: Option<i64>,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<i64> {
        let name = role.name().as_str().to_owned();
        let definition = definition_json(role)?;
        self.write(move |tx, chain| {
            let next = match version {
                None => {
                    tx.execute(
                        "INSERT INTO custom_roles (name, definition, created_at, updated_at, version)
                         VALUES (?1, ?2, ?3, ?3, 1)",
                        params![name, definition, now_ms],
                    )
                    .map_err(map_unique)?;
                    1
                }
                Some(expected) => {
                    let n = tx.execute(
                        "UPDATE custom_roles SET definition = ?2, updated_at = ?3, version = version + 1
                         WHERE name = ?1 AND version = ?4",
                        params![name, definition, now_ms, expected],
                    )?;
                    if n == 0 {
                        let exists = tx
                            .query_row("SELECT 1 FROM custom_roles WHERE name = ?1", [&name], |_| {
                                Ok(())
                            })
                            .optional()?;
                        return Err(if exists.is_some() {
                            StoreError::VersionConflict
                        } else {
                            StoreError::NotFound
                        });
                    }
                    expected + 1
                }
            };
            insert_event(tx, chain, &event)?;
            Ok(next)
        })
        .await
    }

    async fn custom_role_delete(&self, name: &RoleName, event: AuditEvent) -> Result<()> {
        let name = name.as_str().to_owned();
        self.write(move |tx, chain| {
            let holders: i64 = tx.query_row(
                "SELECT COUNT(*) FROM users WHERE custom_role = ?1",
                [&name],
                |r| r.get(0),
            )?;
            if holders > 0 {
                return Err(StoreError::RoleHeld(holders));
            }
            if tx.execute("DELETE FROM custom_roles WHERE name = ?1", [&name])? == 0 {
                return Err(StoreError::NotFound);
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn user_set_role(
        &self,
        username: &Username,
        from: &HeldRole,
        to: &HeldRole,
        event: AuditEvent,
        reassignment: ReassignmentRequest,
    ) -> Result<Option<i64>> {
        let username = username.as_str().to_owned();
        let (from_base, from_custom) = columns(from);
        let (to_base, to_custom) = columns(to);
        self.write(move |tx, chain| {
            let n = tx.execute(
                "UPDATE users SET role = ?1, custom_role = ?2
                 WHERE username = ?3 AND role = ?4 AND custom_role IS ?5",
                params![to_base, to_custom, username, from_base, from_custom],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            tx.execute(
                "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?1)",
                [&username],
            )?;
            insert_event(tx, chain, &event)?;
            let clients: i64 = tx.query_row(
                "SELECT COUNT(*) FROM clients
                 WHERE assigned_accountant = (SELECT id FROM users WHERE username = ?1)",
                [&username],
                |r| r.get(0),
            )?;
            if clients == 0 {
                return Ok(None);
            }
            // One open request per user: a second move before the first is decided leaves it.
            tx.execute(
                "INSERT INTO client_reassignments
                    (id, from_user, clients, requested_by, requested_at, reason, status)
                 SELECT ?1, u.id, ?2, ?3, ?4, ?5, 'pending' FROM users u
                 WHERE u.username = ?6 AND NOT EXISTS (SELECT 1 FROM client_reassignments r
                    WHERE r.from_user = u.id AND r.status = 'pending')",
                params![
                    reassignment.id,
                    clients,
                    reassignment.requested_by,
                    reassignment.at_ms,
                    reassignment.reason,
                    username
                ],
            )?;
            Ok(Some(clients))
        })
        .await
    }

    async fn reassignments(
        &self,
        status: Option<ReassignmentStatus>,
    ) -> Result<Vec<ReassignmentRow>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {REASSIGNMENT_COLUMNS} FROM {REASSIGNMENT_FROM}
                 WHERE ?1 IS NULL OR r.status = ?1 ORDER BY r.requested_at DESC, r.id"
            ))?;
            let rows =
                stmt.query_map([status.map(ReassignmentStatus::as_str)], reassignment_from)?;
            rows.map(|r| r?.into_row()).collect()
        })
        .await
    }

    async fn reassignment_decide(
        &self,
        id: &str,
        decision: ReassignmentDecision,
        event: AuditEvent,
    ) -> Result<ReassignmentRow> {
        let id = id.to_owned();
        self.write(move |tx, chain| {
            let from_user: Option<String> = tx
                .query_row(
                    "SELECT from_user FROM client_reassignments WHERE id = ?1 AND status = 'pending'",
                    [&id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(from_user) = from_user else {
                return Err(StoreError::NotFound);
            };
            let to_user = decision.to_user.map(|u| u.to_string());
            let moved = match &to_user {
                Some(to) => Some(tx.execute(
                    "UPDATE clients SET assigned_accountant = ?1, updated_at = ?2,
                        version = version + 1
                     WHERE assigned_accountant = ?3",
                    params![to, decision.at_ms, from_user],
                )? as i64),
                None => None,
            };
            tx.execute(
                "UPDATE client_reassignments SET status = ?2, to_user = ?3, moved = ?4,
                    decided_by = ?5, decided_at = ?6, decision_reason = ?7
                 WHERE id = ?1",
                params![
                    id,
                    if to_user.is_some() { "approved" } else { "rejected" },
                    to_user,
                    moved,
                    decision.decided_by,
                    decision.at_ms,
                    decision.reason
                ],
            )?;
            insert_event(tx, chain, &event)?;
            tx.query_row(
                &format!("SELECT {REASSIGNMENT_COLUMNS} FROM {REASSIGNMENT_FROM} WHERE r.id = ?1"),
                [&id],
                reassignment_from,
            )?
            .into_row()
        })
        .await
    }

    async fn user_set_team(
        &self,
        username: &Username,
        team: Option<&str>,
        event: AuditEvent,
    ) -> Result<()> {
        let username = username.as_str().to_owned();
        let team = team.map(str::to_owned);
        self.write(move |tx, chain| {
            let n = tx.execute(
                "UPDATE users SET team = ?1 WHERE username = ?2",
                params![team, username],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_event(tx, chain, &event)
        })
        .await
    }
}

/// The stored text of a definition: the same JSON the editor sends.
pub(crate) fn definition_json(role: &CustomRole) -> Result<String> {
    serde_json::to_string(&role.spec())
        .map_err(|e| StoreError::corrupt("custom role definition", e))
}

/// The `users.role` and `users.custom_role` columns of a held role.
pub(crate) fn columns(held: &HeldRole) -> (&'static str, Option<String>) {
    (
        held.base().as_str(),
        held.custom_name().map(|n| n.as_str().to_owned()),
    )
}

fn reassignment_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReassignmentColumns> {
    Ok(ReassignmentColumns {
        id: r.get(0)?,
        from_user: r.get(1)?,
        from_username: r.get(2)?,
        clients: r.get(3)?,
        requested_by: r.get(4)?,
        requested_at_ms: r.get(5)?,
        reason: r.get(6)?,
        status: r.get(7)?,
        to_username: r.get(8)?,
        moved: r.get(9)?,
        decided_by: r.get(10)?,
        decided_at_ms: r.get(11)?,
        decision_reason: r.get(12)?,
    })
}
