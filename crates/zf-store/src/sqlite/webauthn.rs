//! [`WebauthnStore`] on SQLite.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use zf_audit::AuditEvent;
use zf_domain::UserId;

use super::{
    collect, insert_event, insert_session, map_unique, signed_in, user_from, SqliteStore,
    USER_COLUMNS,
};
use crate::rows::decode;
use crate::{
    CeremonyPurpose, CeremonyRow, CredentialAdd, CredentialRow, KeyUse, PasskeySignIn, Result,
    StoreError, UserRow, WebauthnStore,
};

const CREDENTIAL_COLUMNS: &str = "credential_id, user_id, user_handle, name, kind, public_key,
    state, sign_count, transports, user_verified, created_at, last_used_at";
const CREDENTIAL_COLUMNS_W: &str = "w.credential_id, w.user_id, w.user_handle, w.name, w.kind,
    w.public_key, w.state, w.sign_count, w.transports, w.user_verified, w.created_at,
    w.last_used_at";

fn credential_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<CredentialRow>> {
    let user_id = match decode::user_id(&r.get::<_, String>(1)?) {
        Ok(id) => id,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(CredentialRow {
        credential_id: r.get(0)?,
        user_id,
        user_handle: r.get(2)?,
        name: r.get(3)?,
        kind: r.get(4)?,
        public_key: r.get(5)?,
        state: r.get(6)?,
        sign_count: r.get(7)?,
        transports: r.get(8)?,
        user_verified: r.get(9)?,
        created_at_ms: r.get(10)?,
        last_used_at_ms: r.get(11)?,
    }))
}

fn purpose(text: &str) -> Result<CeremonyPurpose> {
    Ok(match text {
        "register" => CeremonyPurpose::Register,
        "second_factor" => CeremonyPurpose::SecondFactor,
        "step_up" => CeremonyPurpose::StepUp,
        "passkey" => CeremonyPurpose::Passkey,
        other => return Err(StoreError::corrupt("webauthn_ceremonies.purpose", other)),
    })
}

/// Moves a key's state on from the one its assertion was verified against; 0 rows if another
/// use got there first.
pub(super) fn use_key(tx: &Connection, user: UserId, k: &KeyUse, now_ms: i64) -> Result<usize> {
    Ok(tx.execute(
        "UPDATE webauthn_credentials SET state = ?1, sign_count = ?2, last_used_at = ?3
         WHERE credential_id = ?4 AND user_id = ?5 AND state = ?6",
        params![
            k.state,
            k.sign_count,
            now_ms,
            k.credential_id,
            user.to_string(),
            k.seen
        ],
    )?)
}

#[async_trait]
impl WebauthnStore for SqliteStore {
    async fn ceremony_put(&self, c: CeremonyRow) -> Result<()> {
        self.write(move |tx, _| {
            tx.execute(
                "DELETE FROM webauthn_ceremonies WHERE expires_at <= ?1",
                [c.created_at_ms],
            )?;
            tx.execute(
                "INSERT INTO webauthn_ceremonies (challenge, purpose, user_id, session_hash,
                     credential_kind, credential_name, state, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    c.challenge,
                    c.purpose.as_str(),
                    c.user_id.map(|u| u.to_string()),
                    c.session_hash,
                    c.credential_kind,
                    c.credential_name,
                    c.state,
                    c.created_at_ms,
                    c.expires_at_ms
                ],
            )
            .map_err(map_unique)?;
            Ok(())
        })
        .await
    }

    async fn ceremony_take(
        &self,
        challenge: &[u8],
        purpose_: CeremonyPurpose,
        session_hash: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<Option<CeremonyRow>> {
        let challenge = challenge.to_vec();
        let session_hash = session_hash.map(<[u8]>::to_vec);
        self.write(move |tx, _| {
            let row = tx
                .query_row(
                    "DELETE FROM webauthn_ceremonies
                     WHERE challenge = ?1 AND purpose = ?2 AND session_hash IS ?3
                     RETURNING challenge, purpose, user_id, session_hash, credential_kind,
                         credential_name, state, created_at, expires_at",
                    params![challenge, purpose_.as_str(), session_hash],
                    |r| {
                        Ok((
                            r.get::<_, Vec<u8>>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, Option<Vec<u8>>>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, Option<String>>(5)?,
                            r.get::<_, Vec<u8>>(6)?,
                            r.get::<_, i64>(7)?,
                            r.get::<_, i64>(8)?,
                        ))
                    },
                )
                .optional()?;
            let Some((challenge, p, user, session_hash, kind, name, state, created, expires)) = row
            else {
                return Ok(None);
            };
            if expires <= now_ms {
                return Ok(None);
            }
            Ok(Some(CeremonyRow {
                challenge,
                purpose: purpose(&p)?,
                user_id: user.as_deref().map(decode::user_id).transpose()?,
                session_hash,
                credential_kind: kind,
                credential_name: name,
                state,
                created_at_ms: created,
                expires_at_ms: expires,
            }))
        })
        .await
    }

    async fn credentials_of(&self, user: UserId) -> Result<Vec<CredentialRow>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM webauthn_credentials WHERE user_id = ?1
                 ORDER BY created_at, credential_id"
            ))?;
            let rows = stmt.query_map([user.to_string()], credential_from)?;
            collect(rows)
        })
        .await
    }

    async fn credential_get(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<(CredentialRow, UserRow)>> {
        let id = credential_id.to_vec();
        self.run(move |c| {
            c.prepare_cached(&format!(
                "SELECT {CREDENTIAL_COLUMNS_W}, {USER_COLUMNS} FROM webauthn_credentials w
                 JOIN users u ON u.id = w.user_id WHERE w.credential_id = ?1"
            ))?
            .query_row([id], |r| {
                let credential = credential_from(r)?;
                let user = user_from(r, 12)?;
                Ok((|| Ok((credential?, user?)))())
            })
            .optional()?
            .transpose()
        })
        .await
    }

    async fn credential_add(&self, add: CredentialAdd, event: AuditEvent) -> Result<()> {
        self.write(move |tx, chain| {
            let k = &add.credential;
            tx.execute(
                &format!(
                    "INSERT INTO webauthn_credentials ({CREDENTIAL_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                ),
                params![
                    k.credential_id,
                    k.user_id.to_string(),
                    k.user_handle,
                    k.name,
                    k.kind,
                    k.public_key,
                    k.state,
                    k.sign_count,
                    k.transports,
                    k.user_verified,
                    k.created_at_ms,
                    k.last_used_at_ms
                ],
            )
            .map_err(map_unique)?;
            let n = tx.execute(
                "DELETE FROM sessions WHERE id_hash = ?1 AND user_id = ?2",
                params![add.old_id_hash, k.user_id.to_string()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_session(tx, &add.new)?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn credential_rename(
        &self,
        user: UserId,
        credential_id: &[u8],
        name: &str,
        event: AuditEvent,
    ) -> Result<()> {
        let id = credential_id.to_vec();
        let name = name.to_owned();
        self.write(move |tx, chain| {
            let n = tx.execute(
                "UPDATE webauthn_credentials SET name = ?1 WHERE credential_id = ?2 AND user_id = ?3",
                params![name, id, user.to_string()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn credential_remove(
        &self,
        user: UserId,
        credential_id: &[u8],
        end_sessions: bool,
        event: AuditEvent,
    ) -> Result<()> {
        let id = credential_id.to_vec();
        self.write(move |tx, chain| {
            let n = tx.execute(
                "DELETE FROM webauthn_credentials WHERE credential_id = ?1 AND user_id = ?2",
                params![id, user.to_string()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            if end_sessions {
                tx.execute(
                    "DELETE FROM sessions WHERE user_id = ?1",
                    [user.to_string()],
                )?;
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn passkey_sign_in(&self, s: PasskeySignIn, event: AuditEvent) -> Result<bool> {
        self.write(move |tx, chain| {
            if use_key(tx, s.session.user_id, &s.key, s.session.created_at_ms)? != 1 {
                return Ok(false);
            }
            insert_session(tx, &s.session)?;
            signed_in(tx, chain, &s.session, s.limit.as_ref())?;
            insert_event(tx, chain, &event)?;
            Ok(true)
        })
        .await
    }
}
