//! [`WebauthnStore`] on PostgreSQL.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use zf_audit::AuditEvent;
use zf_domain::UserId;

use super::{
    insert_event, insert_session, map_unique, signed_in, user_from, PgStore, USER_COLUMNS,
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

fn credential_from(r: &Row) -> Result<CredentialRow> {
    Ok(CredentialRow {
        credential_id: r.try_get(0)?,
        user_id: decode::user_id(r.try_get::<_, &str>(1)?)?,
        user_handle: r.try_get(2)?,
        name: r.try_get(3)?,
        kind: r.try_get(4)?,
        public_key: r.try_get(5)?,
        state: r.try_get(6)?,
        sign_count: r.try_get(7)?,
        transports: r.try_get(8)?,
        user_verified: r.try_get(9)?,
        created_at_ms: r.try_get(10)?,
        last_used_at_ms: r.try_get(11)?,
    })
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
pub(super) async fn use_key(
    c: &impl GenericClient,
    user: &str,
    k: &KeyUse,
    now_ms: i64,
) -> Result<u64> {
    Ok(c.execute(
        "UPDATE webauthn_credentials SET state = $1, sign_count = $2, last_used_at = $3
         WHERE credential_id = $4 AND user_id = $5 AND state = $6",
        &[
            &k.state,
            &k.sign_count,
            &now_ms,
            &k.credential_id,
            &user,
            &k.seen,
        ],
    )
    .await?)
}

#[async_trait]
impl WebauthnStore for PgStore {
    async fn ceremony_put(&self, c: CeremonyRow) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "DELETE FROM webauthn_ceremonies WHERE expires_at <= $1",
            &[&c.created_at_ms],
        )
        .await?;
        tx.execute(
            "INSERT INTO webauthn_ceremonies (challenge, purpose, user_id, session_hash,
                 credential_kind, credential_name, state, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &c.challenge,
                &c.purpose.as_str(),
                &c.user_id.map(|u| u.to_string()),
                &c.session_hash,
                &c.credential_kind,
                &c.credential_name,
                &c.state,
                &c.created_at_ms,
                &c.expires_at_ms,
            ],
        )
        .await
        .map_err(map_unique)?;
        tx.commit().await?;
        Ok(())
    }

    async fn ceremony_take(
        &self,
        challenge: &[u8],
        purpose_: CeremonyPurpose,
        session_hash: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<Option<CeremonyRow>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "DELETE FROM webauthn_ceremonies
                 WHERE challenge = $1 AND purpose = $2 AND session_hash IS NOT DISTINCT FROM $3
                 RETURNING challenge, purpose, user_id, session_hash, credential_kind,
                     credential_name, state, created_at, expires_at",
                &[&challenge, &purpose_.as_str(), &session_hash],
            )
            .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let expires: i64 = r.try_get(8)?;
        if expires <= now_ms {
            return Ok(None);
        }
        Ok(Some(CeremonyRow {
            challenge: r.try_get(0)?,
            purpose: purpose(r.try_get::<_, &str>(1)?)?,
            user_id: r
                .try_get::<_, Option<&str>>(2)?
                .map(decode::user_id)
                .transpose()?,
            session_hash: r.try_get(3)?,
            credential_kind: r.try_get(4)?,
            credential_name: r.try_get(5)?,
            state: r.try_get(6)?,
            created_at_ms: r.try_get(7)?,
            expires_at_ms: expires,
        }))
    }

    async fn credentials_of(&self, user: UserId) -> Result<Vec<CredentialRow>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM webauthn_credentials WHERE user_id = $1
                 ORDER BY created_at, credential_id"
            ))
            .await?;
        c.query(&stmt, &[&user.to_string()])
            .await?
            .iter()
            .map(credential_from)
            .collect()
    }

    async fn credential_get(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<(CredentialRow, UserRow)>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {CREDENTIAL_COLUMNS_W}, {USER_COLUMNS} FROM webauthn_credentials w
                 JOIN users u ON u.id = w.user_id WHERE w.credential_id = $1"
            ))
            .await?;
        c.query_opt(&stmt, &[&credential_id])
            .await?
            .as_ref()
            .map(|r| Ok((credential_from(r)?, user_from(r, 12)?)))
            .transpose()
    }

    async fn credential_add(&self, add: CredentialAdd, event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let k = &add.credential;
        let user = k.user_id.to_string();
        tx.execute(
            &format!(
                "INSERT INTO webauthn_credentials ({CREDENTIAL_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ),
            &[
                &k.credential_id,
                &user,
                &k.user_handle,
                &k.name,
                &k.kind,
                &k.public_key,
                &k.state,
                &k.sign_count,
                &k.transports,
                &k.user_verified,
                &k.created_at_ms,
                &k.last_used_at_ms,
            ],
        )
        .await
        .map_err(map_unique)?;
        let n = tx
            .execute(
                "DELETE FROM sessions WHERE id_hash = $1 AND user_id = $2",
                &[&add.old_id_hash, &user],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        insert_session(&tx, &add.new).await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn credential_rename(
        &self,
        user: UserId,
        credential_id: &[u8],
        name: &str,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "UPDATE webauthn_credentials SET name = $1 WHERE credential_id = $2 AND user_id = $3",
                &[&name, &credential_id, &user.to_string()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn credential_remove(
        &self,
        user: UserId,
        credential_id: &[u8],
        end_sessions: bool,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "DELETE FROM webauthn_credentials WHERE credential_id = $1 AND user_id = $2",
                &[&credential_id, &user.to_string()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        if end_sessions {
            tx.execute(
                "DELETE FROM sessions WHERE user_id = $1",
                &[&user.to_string()],
            )
            .await?;
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn passkey_sign_in(&self, s: PasskeySignIn, event: AuditEvent) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let user = s.session.user_id.to_string();
        if use_key(&tx, &user, &s.key, s.session.created_at_ms).await? != 1 {
            return Ok(false);
        }
        insert_session(&tx, &s.session).await?;
        signed_in(&tx, &self.chain, &s.session, s.limit.as_ref()).await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(true)
    }
}
