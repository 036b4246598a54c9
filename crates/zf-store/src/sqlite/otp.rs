//! [`OtpStore`] on SQLite.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};
use zf_audit::AuditEvent;
use zf_crypto::Sealed;
use zf_domain::UserId;

use super::{collect, insert_event, insert_session, SqliteStore};
use crate::otp::{self, throttle};
use crate::{
    OtpChannel, OtpCodeRow, OtpConfirm, OtpFactorRow, OtpIssue, OtpIssued, OtpStore, Result,
    StoreError,
};

#[async_trait]
impl OtpStore for SqliteStore {
    async fn otp_factors(&self, user: UserId) -> Result<Vec<OtpFactorRow>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT channel, address, pending_address, created_at, confirmed_at
                 FROM otp_factors WHERE user_id = ?1 ORDER BY channel",
            )?;
            let rows = stmt.query_map([user.to_string()], |r| {
                let channel: String = r.get(0)?;
                let address: Option<Vec<u8>> = r.get(1)?;
                let pending: Option<Vec<u8>> = r.get(2)?;
                let created_at_ms: i64 = r.get(3)?;
                let confirmed_at_ms: Option<i64> = r.get(4)?;
                Ok((|| -> Result<OtpFactorRow> {
                    Ok(OtpFactorRow {
                        user_id: user,
                        channel: otp::channel(&channel)?,
                        address: otp::sealed("otp_factors.address", address)?,
                        pending_address: otp::sealed("otp_factors.pending_address", pending)?,
                        created_at_ms,
                        confirmed_at_ms,
                    })
                })())
            })?;
            collect(rows)
        })
        .await
    }

    async fn otp_factor_begin(
        &self,
        user: UserId,
        channel: OtpChannel,
        pending: Sealed,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            tx.execute(
                "INSERT INTO otp_factors (user_id, channel, address, pending_address, created_at,
                     confirmed_at) VALUES (?1, ?2, NULL, ?3, ?4, NULL)
                 ON CONFLICT (user_id, channel) DO UPDATE SET
                     pending_address = excluded.pending_address",
                params![
                    user.to_string(),
                    channel.as_str(),
                    pending.as_bytes(),
                    now_ms
                ],
            )?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn otp_issue(&self, issue: OtpIssue, event: AuditEvent) -> Result<OtpIssued> {
        self.write(move |tx, chain| {
            let user = issue.user_id.to_string();
            let previous: Option<(i64, i64, i64)> = tx
                .query_row(
                    "SELECT sent_at, window_start, window_sends FROM otp_codes WHERE user_id = ?1",
                    [&user],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let (window_start, window_sends) = match throttle(previous, &issue) {
                Ok(w) => w,
                Err(refused) => return Ok(refused),
            };
            tx.execute(
                "INSERT INTO otp_codes (user_id, channel, purpose, code_hash, sent_at, expires_at,
                     attempts_left, used_at, window_start, window_sends)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?9)
                 ON CONFLICT (user_id) DO UPDATE SET channel = excluded.channel,
                     purpose = excluded.purpose, code_hash = excluded.code_hash,
                     sent_at = excluded.sent_at, expires_at = excluded.expires_at,
                     attempts_left = excluded.attempts_left, used_at = NULL,
                     window_start = excluded.window_start, window_sends = excluded.window_sends",
                params![
                    user,
                    issue.channel.as_str(),
                    issue.purpose.as_str(),
                    issue.code_hash.as_bytes(),
                    issue.now_ms,
                    issue.expires_at_ms,
                    issue.attempts,
                    window_start,
                    window_sends,
                ],
            )?;
            insert_event(tx, chain, &event)?;
            Ok(OtpIssued::Issued)
        })
        .await
    }

    async fn otp_void(&self, user: UserId, event: AuditEvent) -> Result<()> {
        self.write(move |tx, chain| {
            tx.execute(
                "UPDATE otp_codes SET attempts_left = 0 WHERE user_id = ?1",
                [user.to_string()],
            )?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn otp_attempt(&self, user: UserId, now_ms: i64) -> Result<Option<OtpCodeRow>> {
        self.write(move |tx, _| {
            tx.query_row(
                "UPDATE otp_codes SET attempts_left = attempts_left - 1
                 WHERE user_id = ?1 AND used_at IS NULL AND expires_at > ?2 AND attempts_left > 0
                 RETURNING channel, purpose, code_hash, sent_at, expires_at, attempts_left",
                params![user.to_string(), now_ms],
                |r| {
                    let channel: String = r.get(0)?;
                    let purpose: String = r.get(1)?;
                    let hash: Vec<u8> = r.get(2)?;
                    let sent_at_ms: i64 = r.get(3)?;
                    let expires_at_ms: i64 = r.get(4)?;
                    let attempts_left: i64 = r.get(5)?;
                    Ok((|| -> Result<OtpCodeRow> {
                        Ok(OtpCodeRow {
                            user_id: user,
                            channel: otp::channel(&channel)?,
                            purpose: otp::purpose(&purpose)?,
                            code_hash: otp::code_hash(&hash)?,
                            sent_at_ms,
                            expires_at_ms,
                            attempts_left,
                        })
                    })())
                },
            )
            .optional()?
            .transpose()
        })
        .await
    }

    async fn otp_factor_confirm(&self, c: OtpConfirm, event: AuditEvent) -> Result<bool> {
        self.write(move |tx, chain| {
            let user = c.user_id.to_string();
            let used = tx.execute(
                "UPDATE otp_codes SET used_at = ?1
                 WHERE user_id = ?2 AND code_hash = ?3 AND purpose = 'enrol' AND channel = ?4
                     AND used_at IS NULL AND expires_at > ?1",
                params![c.now_ms, user, c.code_hash.as_bytes(), c.channel.as_str()],
            )?;
            if used == 0 {
                return Ok(false);
            }
            let n = tx.execute(
                "UPDATE otp_factors SET address = pending_address, pending_address = NULL,
                     confirmed_at = ?1
                 WHERE user_id = ?2 AND channel = ?3 AND pending_address IS NOT NULL",
                params![c.now_ms, user, c.channel.as_str()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            let n = tx.execute(
                "DELETE FROM sessions WHERE id_hash = ?1 AND user_id = ?2",
                params![c.old_id_hash, user],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_session(tx, &c.new)?;
            insert_event(tx, chain, &event)?;
            Ok(true)
        })
        .await
    }
}
