//! One-time codes sent by e-mail or SMS as a second factor: the addresses users registered
//! (sealed), and each user's one live code, stored only as a keyed hash.
//!
//! A user has at most one live code: issuing a new one replaces the old, whatever it was for.
//! Attempts are claimed before a code is compared, so however many guesses arrive at once, no
//! more than the code's attempts are ever checked against it.

use async_trait::async_trait;
use zf_audit::AuditEvent;
use zf_crypto::{BlindIndex, Sealed};
use zf_domain::UserId;

use crate::{Result, SessionRow, StoreError};

/// Where a code goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OtpChannel {
    Email,
    Sms,
}

impl OtpChannel {
    pub const ALL: [OtpChannel; 2] = [OtpChannel::Email, OtpChannel::Sms];

    pub fn as_str(self) -> &'static str {
        match self {
            OtpChannel::Email => "email",
            OtpChannel::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What a code is good for; bound into its hash, so a code sent for one purpose does nothing
/// for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OtpPurpose {
    /// Confirming a newly registered address.
    Enrol,
    /// Completing a sign-in after the password.
    SignIn,
    /// Verifying again for a critical operation.
    StepUp,
}

impl OtpPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            OtpPurpose::Enrol => "enrol",
            OtpPurpose::SignIn => "sign_in",
            OtpPurpose::StepUp => "step_up",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [OtpPurpose::Enrol, OtpPurpose::SignIn, OtpPurpose::StepUp]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// A registered address. Both addresses are sealed under the MFA system key.
#[derive(Clone, Debug)]
pub struct OtpFactorRow {
    pub user_id: UserId,
    pub channel: OtpChannel,
    /// The confirmed address; absent until a first code confirmed one.
    pub address: Option<Sealed>,
    /// A new address waiting for its first code.
    pub pending_address: Option<Sealed>,
    pub created_at_ms: i64,
    pub confirmed_at_ms: Option<i64>,
}

/// A user's live code as stored: its keyed hash, never the code.
#[derive(Clone, Debug)]
pub struct OtpCodeRow {
    pub user_id: UserId,
    pub channel: OtpChannel,
    pub purpose: OtpPurpose,
    pub code_hash: BlindIndex,
    pub sent_at_ms: i64,
    pub expires_at_ms: i64,
    /// Comparisons still allowed, after the one this row was claimed for.
    pub attempts_left: i64,
}

/// A new code to store in place of the user's previous one, if the throttle allows.
#[derive(Clone, Debug)]
pub struct OtpIssue {
    pub user_id: UserId,
    pub channel: OtpChannel,
    pub purpose: OtpPurpose,
    pub code_hash: BlindIndex,
    pub now_ms: i64,
    pub expires_at_ms: i64,
    pub attempts: i64,
    /// No new code before this long after the previous one was sent.
    pub min_interval_ms: i64,
    /// At most this many codes per user in a window of an hour.
    pub max_per_hour: i64,
}

/// Whether a code was issued, or when the throttle allows the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpIssued {
    Issued,
    TooSoon { retry_at_ms: i64 },
    HourlyLimit { retry_at_ms: i64 },
}

/// Confirms a pending address with its enrolment code: the code is used, the address becomes
/// the confirmed one, and the session is replaced by one with a verified factor.
#[derive(Clone, Debug)]
pub struct OtpConfirm {
    pub user_id: UserId,
    pub channel: OtpChannel,
    pub code_hash: BlindIndex,
    pub now_ms: i64,
    pub old_id_hash: Vec<u8>,
    pub new: SessionRow,
}

pub(crate) const HOUR_MS: i64 = 3_600_000;

/// The throttle's verdict on the previous code's row: `(sent_at, window_start, window_sends)`.
/// Returns the window the new code counts in, or why it may not be sent.
pub(crate) fn throttle(
    previous: Option<(i64, i64, i64)>,
    issue: &OtpIssue,
) -> std::result::Result<(i64, i64), OtpIssued> {
    let now = issue.now_ms;
    let Some((sent_at, window_start, sends)) = previous else {
        return Ok((now, 1));
    };
    if now < sent_at + issue.min_interval_ms {
        return Err(OtpIssued::TooSoon {
            retry_at_ms: sent_at + issue.min_interval_ms,
        });
    }
    if now >= window_start + HOUR_MS {
        return Ok((now, 1));
    }
    if sends >= issue.max_per_hour {
        return Err(OtpIssued::HourlyLimit {
            retry_at_ms: window_start + HOUR_MS,
        });
    }
    Ok((window_start, sends + 1))
}

pub(crate) fn channel(s: &str) -> Result<OtpChannel> {
    OtpChannel::parse(s).ok_or_else(|| StoreError::corrupt("otp channel", s))
}

pub(crate) fn purpose(s: &str) -> Result<OtpPurpose> {
    OtpPurpose::parse(s).ok_or_else(|| StoreError::corrupt("otp purpose", s))
}

pub(crate) fn sealed(column: &'static str, bytes: Option<Vec<u8>>) -> Result<Option<Sealed>> {
    bytes
        .map(|b| Sealed::from_bytes(b).map_err(|e| StoreError::corrupt(column, e)))
        .transpose()
}

pub(crate) fn code_hash(bytes: &[u8]) -> Result<BlindIndex> {
    BlindIndex::from_bytes(bytes).map_err(|e| StoreError::corrupt("otp_codes.code_hash", e))
}

#[async_trait]
pub trait OtpStore: Send + Sync {
    /// The user's registered addresses, confirmed or pending.
    async fn otp_factors(&self, user: UserId) -> Result<Vec<OtpFactorRow>>;
    /// Records `pending` as the address of `channel` waiting for its first code; a confirmed
    /// address stays in force until the new one is confirmed.
    async fn otp_factor_begin(
        &self,
        user: UserId,
        channel: OtpChannel,
        pending: Sealed,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()>;
    /// Stores a new code in place of the user's previous one, with `event`, unless the throttle
    /// refuses; nothing is written then.
    async fn otp_issue(&self, issue: OtpIssue, event: AuditEvent) -> Result<OtpIssued>;
    /// Voids the user's live code (its delivery failed), with `event`.
    async fn otp_void(&self, user: UserId, event: AuditEvent) -> Result<()>;
    /// Claims one attempt at the user's live code (unused, unexpired, attempts left) and
    /// returns it; `None` if there is no live code to compare with.
    async fn otp_attempt(&self, user: UserId, now_ms: i64) -> Result<Option<OtpCodeRow>>;
    /// Uses an enrolment code and makes the pending address the confirmed one, replacing the
    /// session. `Ok(false)`, with nothing changed, if the code was used or expired meanwhile;
    /// `NotFound` if no address is pending or the session ended.
    async fn otp_factor_confirm(&self, confirm: OtpConfirm, event: AuditEvent) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(now: i64) -> OtpIssue {
        OtpIssue {
            user_id: UserId::new_random(),
            channel: OtpChannel::Email,
            purpose: OtpPurpose::SignIn,
            code_hash: BlindIndex::from_bytes(&[0; 32]).unwrap(),
            now_ms: now,
            expires_at_ms: now + 300_000,
            attempts: 5,
            min_interval_ms: 60_000,
            max_per_hour: 3,
        }
    }

    #[test]
    fn the_throttle_spaces_codes_and_caps_them_per_hour() {
        assert_eq!(throttle(None, &issue(1_000)), Ok((1_000, 1)));
        assert_eq!(
            throttle(Some((0, 0, 1)), &issue(59_999)),
            Err(OtpIssued::TooSoon {
                retry_at_ms: 60_000
            })
        );
        assert_eq!(throttle(Some((0, 0, 1)), &issue(60_000)), Ok((0, 2)));
        assert_eq!(
            throttle(Some((120_000, 0, 3)), &issue(180_000)),
            Err(OtpIssued::HourlyLimit {
                retry_at_ms: HOUR_MS
            })
        );
        assert_eq!(
            throttle(Some((120_000, 0, 3)), &issue(HOUR_MS)),
            Ok((HOUR_MS, 1))
        );
    }
}
