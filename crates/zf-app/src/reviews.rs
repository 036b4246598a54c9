//! Periodic access reviews (default quarterly): every account's effective access is listed for
//! the security administrator — and each team's members for their supervisor — who certify or
//! revoke each line; a revoked line disables the account at once, and lines left unanswered
//! past the due date raise an alert.

use serde::Serialize;
use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_domain::Username;
use zf_policy::{Grant, Operation};
use zf_store::{ReviewCampaign, ReviewLine};

use crate::{actor, now_ms, App, AppError, RequestMeta};

const DAY_MS: i64 = 86_400_000;
/// The lease of the scheduled access review (see `App::review_schedule`).
const REVIEW_LEASE: &str = "access_review";

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    Certify,
    Revoke,
}

/// A campaign with its lines, and which lines are overdue.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewView {
    #[schema(value_type = Object)]
    pub campaign: ReviewCampaign,
    #[schema(value_type = Vec<Object>)]
    pub lines: Vec<ReviewLine>,
    /// Usernames whose line is unanswered past the due date.
    pub overdue: Vec<String>,
}

impl App {
    /// Starts a campaign, on behalf of the signed-in security administrator.
    pub async fn review_start_by(
        &self,
        grant: &Grant,
        due_days: u32,
        meta: &RequestMeta,
    ) -> Result<ReviewView, AppError> {
        self.review_start(actor(grant, meta), due_days).await
    }

    /// Starts a campaign listing every enabled account's access as it stands now.
    pub async fn review_start(&self, by: Actor, due_days: u32) -> Result<ReviewView, AppError> {
        if !(1..=90).contains(&due_days) {
            return Err(AppError::Invalid("a review is due in 1 to 90 days".into()));
        }
        let now = now_ms();
        let campaign = ReviewCampaign {
            id: uuid::Uuid::now_v7().to_string(),
            created_at_ms: now,
            due_at_ms: now + i64::from(due_days) * DAY_MS,
            created_by: by.name.clone(),
        };
        let lines: Vec<ReviewLine> = self
            .store
            .users_enabled()
            .await?
            .into_iter()
            .map(|u| self.effective_permissions_of(&u))
            .map(|e| ReviewLine {
                campaign_id: campaign.id.clone(),
                username: e.username,
                role: e.role,
                permissions: e.permissions.join(","),
                client_scope: e.client_scope,
                decision: None,
                decided_by: None,
                decided_at_ms: None,
                reason: None,
            })
            .collect();
        let event = AuditEvent::new(now, by, AuditAction::ReviewStarted, Outcome::Success)
            .on("review", &campaign.id)
            .detail(format!("{} accounts, due in {due_days} days", lines.len()));
        self.store
            .review_create(campaign.clone(), lines, event)
            .await?;
        self.review_view(&campaign.id).await
    }

    pub async fn review_view(&self, id: &str) -> Result<ReviewView, AppError> {
        let campaign = self
            .store
            .review_campaigns()
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or(AppError::NotFound)?;
        let lines = self.store.review_lines(id).await?;
        let late = now_ms() > campaign.due_at_ms;
        let overdue = lines
            .iter()
            .filter(|l| late && l.decision.is_none())
            .map(|l| l.username.clone())
            .collect();
        Ok(ReviewView {
            campaign,
            lines,
            overdue,
        })
    }

    /// Answers one line. Nobody reviews their own access; a supervisor answering through their
    /// team's part of the review answers only their team's members.
    pub async fn review_decide(
        &self,
        grant: &Grant,
        campaign_id: &str,
        username: &Username,
        decision: ReviewDecision,
        reason: &str,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(AppError::Invalid(
                "give a reason, at most 200 characters".into(),
            ));
        }
        if grant.operation() == Operation::TeamReviewAnswer {
            self.check_team_member(grant, username).await?;
        }
        let by = actor(grant, meta);
        if by.name == username.as_str() {
            return Err(AppError::Invalid(
                "nobody may review their own access".into(),
            ));
        }
        let word = match decision {
            ReviewDecision::Certify => "certified",
            ReviewDecision::Revoke => "revoked",
        };
        let event = AuditEvent::new(
            now_ms(),
            by.clone(),
            AuditAction::ReviewDecided,
            Outcome::Success,
        )
        .on("user", username.as_str())
        .detail(format!("{word} in review {campaign_id}: {reason}"))
        .request(meta.request_id.clone());
        self.store
            .review_decide(
                campaign_id,
                username,
                word,
                &by.name,
                now_ms(),
                reason,
                event,
            )
            .await
            .map_err(|e| match e {
                zf_store::StoreError::NotFound => AppError::Conflict(
                    "no open line for this user in this review (answered already?)".into(),
                ),
                other => other.into(),
            })
    }

    /// The team a supervisor reviews: theirs. A supervisor without a team has no team lines;
    /// the security administrator answers those.
    fn reviewing_team(grant: &Grant) -> Result<String, AppError> {
        grant
            .principal()
            .and_then(|p| p.team.clone())
            .ok_or_else(|| {
                AppError::Invalid(
                    "you lead no team: the security administrator answers this review".into(),
                )
            })
    }

    /// The newest campaign, if any: what a supervisor's review screen shows.
    pub async fn review_latest(&self) -> Result<Option<String>, AppError> {
        Ok(self
            .store
            .review_campaigns()
            .await?
            .into_iter()
            .max_by_key(|c| c.created_at_ms)
            .map(|c| c.id))
    }

    /// A supervisor's part of a campaign: the lines of the members of their team (not their
    /// own), as the team stands now.
    pub async fn review_team_view(&self, grant: &Grant, id: &str) -> Result<ReviewView, AppError> {
        let team = Self::reviewing_team(grant)?;
        let me = grant.principal().map(|p| p.username.as_str().to_owned());
        let mut view = self.review_view(id).await?;
        // Disabled accounts count too: a line revoked a moment ago still shows its answer.
        let mut members = std::collections::BTreeSet::new();
        for line in &view.lines {
            let Ok(name) = Username::parse(&line.username) else {
                continue;
            };
            let in_team = self
                .store
                .user_by_username(&name)
                .await?
                .is_some_and(|u| u.team.as_deref() == Some(team.as_str()));
            if in_team && Some(&line.username) != me.as_ref() {
                members.insert(line.username.clone());
            }
        }
        view.lines.retain(|l| members.contains(&l.username));
        view.overdue.retain(|u| members.contains(u));
        Ok(view)
    }

    /// Whether `username` is in the team of the supervisor answering through their team's
    /// part of a review; anyone else's line is not theirs to answer (404).
    async fn check_team_member(&self, grant: &Grant, username: &Username) -> Result<(), AppError> {
        let team = Self::reviewing_team(grant)?;
        let member = self
            .store
            .user_by_username(username)
            .await?
            .is_some_and(|u| u.team.as_deref() == Some(team.as_str()));
        if member {
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }

    /// Starts a campaign when the latest is older than `every_days` (or there is none). Of
    /// several nodes asking at once, the one holding the `access_review` lease starts it.
    pub async fn review_schedule(
        &self,
        every_days: u32,
        due_days: u32,
    ) -> Result<Option<ReviewView>, AppError> {
        let due = || async {
            let latest = self
                .store
                .review_campaigns()
                .await?
                .into_iter()
                .map(|c| c.created_at_ms)
                .max();
            Ok::<_, AppError>(latest.is_none_or(|t| now_ms() - t >= i64::from(every_days) * DAY_MS))
        };
        if !due().await? {
            return Ok(None);
        }
        let Some(lease) = self.schedule_lease(REVIEW_LEASE).await? else {
            return Ok(None);
        };
        // Asked again under the lease: another node may have just started one.
        let started = match due().await {
            Ok(true) => self.review_start(Actor::system(), due_days).await.map(Some),
            Ok(false) => Ok(None),
            Err(e) => Err(e),
        };
        lease.release().await?;
        started
    }
}
