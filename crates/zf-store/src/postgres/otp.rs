//! [`OtpStore`] on PostgreSQL: each call one transaction; issuing a code locks the user's row,
//! so two nodes cannot both pass the throttle.

use async_trait::async_trait;
use tokio_postgres::Row;
use zf_audit::AuditEvent;
use zf_crypto::Sealed;
use zf_domain::UserId;

use super::{insert_event, insert_session, PgStore};
use crate::otp::{self, throttle};
use crate::{
    OtpChannel, OtpCodeRow, OtpConfirm, OtpFactorRow, OtpIssue, OtpIssued, OtpStore, Result,
    StoreError,
};

fn factor_from(user: UserId, r: &Row) -> Result<OtpFactorRow> {
    Ok(OtpFactorRow {
        user_id: user,
        channel: otp::channel(r.try_get::<_, &str>(0)?)?,
        address: otp::sealed("otp_factors.address", r.try_get(1)?)?,
        pending_address: otp::sealed("otp_factors.pending_address", r.try_get(2)?)?,
        created_at_ms: r.try_get(3)?,
        confirmed_at_ms: r.try_get(4)?,
    })
}

fn code_from(user: UserId, r: &Row) -> Result<OtpCodeRow> {
    Ok(OtpCodeRow {
        user_id: user,
        channel: otp::channel(r.try_get::<_, &str>(0)?)?,
        purpose: otp::purpose(r.try_get::<_, &str>(1)?)?,
        code_hash: otp::code_hash(r.try_get::<_, &[u8]>(2)?)?,
        sent_at_ms: r.try_get(3)?,
        expires_at_ms: r.try_get(4)?,
        attempts_left: r.try_get(5)?,
    })
}

#[async_trait]
impl OtpStore for PgStore {
    async fn otp_factors(&self, user: UserId) -> Result<Vec<OtpFactorRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT channel, address, pending_address, created_at, confirmed_at
                 FROM otp_factors WHERE user_id = $1 ORDER BY channel",
                &[&user.to_string()],
            )
            .await?;
        rows.iter().map(|r| factor_from(user, r)).collect()
    }

    async fn otp_factor_begin(
        &self,
        user: UserId,
        channel: OtpChannel,
        pending: Sealed,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "INSERT INTO otp_factors (user_id, channel, address, pending_address, created_at,
                 confirmed_at) VALUES ($1, $2, NULL, $3, $4, NULL)
             ON CONFLICT (user_id, channel) DO UPDATE SET
                 pending_address = excluded.pending_address",
            &[
                &user.to_string(),
                &channel.as_str(),
                &pending.as_bytes(),
                &now_ms,
            ],
        )
        .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn otp_issue(&self, issue: OtpIssue, event: AuditEvent) -> Result<OtpIssued> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let user = issue.user_id.to_string();
        tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user])
            .await?;
        let previous = tx
            .query_opt(
                "SELECT sent_at, window_start, window_sends FROM otp_codes WHERE user_id = $1",
                &[&user],
            )
            .await?
            .map(|r| -> Result<(i64, i64, i64)> {
                Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
            })
            .transpose()?;
        let (window_start, window_sends) = match throttle(previous, &issue) {
            Ok(w) => w,
            Err(refused) => return Ok(refused),
        };
        tx.execute(
            "INSERT INTO otp_codes (user_id, channel, purpose, code_hash, sent_at, expires_at,
                 attempts_left, used_at, window_start, window_sends)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9)
             ON CONFLICT (user_id) DO UPDATE SET channel = excluded.channel,
                 purpose = excluded.purpose, code_hash = excluded.code_hash,
                 sent_at = excluded.sent_at, expires_at = excluded.expires_at,
                 attempts_left = excluded.attempts_left, used_at = NULL,
                 window_start = excluded.window_start, window_sends = excluded.window_sends",
            &[
                &user,
                &issue.channel.as_str(),
                &issue.purpose.as_str(),
                &issue.code_hash.as_bytes(),
                &issue.now_ms,
                &issue.expires_at_ms,
                &issue.attempts,
                &window_start,
                &window_sends,
            ],
        )
        .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(OtpIssued::Issued)
    }

    async fn otp_void(&self, user: UserId, event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "UPDATE otp_codes SET attempts_left = 0 WHERE user_id = $1",
            &[&user.to_string()],
        )
        .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn otp_attempt(&self, user: UserId, now_ms: i64) -> Result<Option<OtpCodeRow>> {
        let c = self.client().await?;
        c.query_opt(
            "UPDATE otp_codes SET attempts_left = attempts_left - 1
             WHERE user_id = $1 AND used_at IS NULL AND expires_at > $2 AND attempts_left > 0
             RETURNING channel, purpose, code_hash, sent_at, expires_at, attempts_left",
            &[&user.to_string(), &now_ms],
        )
        .await?
        .map(|r| code_from(user, &r))
        .transpose()
    }

    async fn otp_factor_confirm(&self, c: OtpConfirm, event: AuditEvent) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let user = c.user_id.to_string();
        let used = tx
            .execute(
                "UPDATE otp_codes SET used_at = $1
                 WHERE user_id = $2 AND code_hash = $3 AND purpose = 'enrol' AND channel = $4
                     AND used_at IS NULL AND expires_at > $1",
                &[
                    &c.now_ms,
                    &user,
                    &c.code_hash.as_bytes(),
                    &c.channel.as_str(),
                ],
            )
            .await?;
        if used == 0 {
            return Ok(false);
        }
        let n = tx
            .execute(
                "UPDATE otp_factors SET address = pending_address, pending_address = NULL,
                     confirmed_at = $1
                 WHERE user_id = $2 AND channel = $3 AND pending_address IS NOT NULL",
                &[&c.now_ms, &user, &c.channel.as_str()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        let n = tx
            .execute(
                "DELETE FROM sessions WHERE id_hash = $1 AND user_id = $2",
                &[&c.old_id_hash, &user],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        insert_session(&tx, &c.new).await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(true)
    }
}
