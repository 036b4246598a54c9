//! Tax filing tasks (申报任务): generated per client from its taxpayer type and the filing
//! calendar, worked through todo → in progress → filed, overdue once the due date passes.
//! What is due is not sensitive; the amounts filed live in the financial records.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zf_audit::AuditAction;
use zf_domain::{ClientId, Date, FilingCalendar, FilingStatus, Notes, Period, RecordId, TaxKind};
use zf_policy::Grant;
use zf_store::{RecordHit, RecordKind, RecordOp, RecordQuery, RecordWrite};

use super::{new_row, to_json, RecordMeta};
use crate::{now_ms, App, AppError, RequestMeta};

const KIND: RecordKind = RecordKind::FilingTask;
/// Beijing time: a deadline ends at midnight in China, wherever the server's clock is set.
const CHINA_OFFSET_MS: i64 = 8 * 60 * 60 * 1000;

/// Today's date in China.
pub fn today() -> Date {
    today_at(now_ms())
}

pub fn today_at(now_ms: i64) -> Date {
    Date::from_days((now_ms + CHINA_OFFSET_MS).div_euclid(86_400_000))
        .unwrap_or_else(|_| Date::new(2000, 1, 1).expect("a valid constant date"))
}

fn check_year(year: i32) -> Result<(), AppError> {
    if (2000..=2100).contains(&year) {
        Ok(())
    } else {
        Err(AppError::Invalid(
            "year: must be between 2000 and 2100".into(),
        ))
    }
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateFilings {
    /// The year whose deadlines to plan: every filing due in it.
    pub year: i32,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GeneratedFilings {
    pub year: i32,
    /// Tasks created now; tasks that existed already are left as they are.
    pub created: u64,
    pub total: usize,
    /// Where the year's deadlines came from, e.g. 税总办征科函〔2025〕64号; absent when the
    /// calendar does not cover the year and the statutory 15th was used.
    pub calendar_source: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilingUpdate {
    /// `todo`, `in_progress` or `filed`; overdue is derived from the due date.
    pub status: FilingStatus,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub note: Option<Notes>,
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct Plain {
    tax: TaxKind,
    period: Period,
    due: Date,
    filed_on: Option<Date>,
    note: Option<Notes>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FilingView {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub tax: TaxKind,
    pub tax_label: &'static str,
    pub period: String,
    #[schema(value_type = String, format = Date)]
    pub due: Date,
    /// The stored status, or `overdue` when it is not filed and the due date has passed.
    pub status: FilingStatus,
    #[schema(value_type = Option<String>, format = Date)]
    pub filed_on: Option<Date>,
    pub note: Option<String>,
}

/// The deadlines dashboard of the caller's clients.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FilingsDue {
    #[schema(value_type = String, format = Date)]
    pub today: Date,
    pub overdue: Vec<FilingView>,
    /// Due from today to the end of the window (seven days by default).
    pub due_soon: Vec<FilingView>,
}

impl App {
    fn filing_view(&self, hit: &RecordHit, today: Date) -> Result<FilingView, AppError> {
        let p: Plain = self.plain_json(&hit.row)?;
        let stored = hit
            .row
            .status
            .as_deref()
            .and_then(|s| FilingStatus::parse(s).ok())
            .unwrap_or(FilingStatus::Todo);
        Ok(FilingView {
            meta: RecordMeta::of(hit),
            tax: p.tax,
            tax_label: p.tax.label_zh(),
            period: p.period.as_string(),
            due: p.due,
            status: stored.effective(p.due, today),
            filed_on: p.filed_on,
            note: p.note.map(|n| n.as_str().to_owned()),
        })
    }

    /// Creates a client's filing tasks for every deadline in `year` from its taxpayer type
    /// and the bundled filing calendar. Running it again creates only what is missing.
    pub async fn filing_generate(
        &self,
        grant: &Grant,
        client: ClientId,
        request: GenerateFilings,
        meta: &RequestMeta,
    ) -> Result<GeneratedFilings, AppError> {
        check_year(request.year)?;
        let (record, _) = self.scoped_client(grant, client).await?;
        let (write, total) =
            self.filing_generation(grant, client, record.row.taxpayer_type, &request, meta)?;
        let created = self.record_write_one(write).await?;
        Ok(GeneratedFilings {
            year: request.year,
            created,
            total,
            calendar_source: FilingCalendar::bundled()
                .source(request.year)
                .map(str::to_owned),
        })
    }

    /// The filing tasks of a client of `taxpayer_type` for a year, each inserted only if absent,
    /// with the generation's audit event, and how many obligations the year has; shared by
    /// `filing_generate` and the batched creation.
    pub(crate) fn filing_generation(
        &self,
        grant: &Grant,
        client: ClientId,
        taxpayer_type: zf_domain::TaxpayerType,
        request: &GenerateFilings,
        meta: &RequestMeta,
    ) -> Result<(RecordWrite, usize), AppError> {
        check_year(request.year)?;
        let calendar = FilingCalendar::bundled();
        let obligations = zf_domain::obligations(calendar, taxpayer_type, request.year);
        let mut ops = Vec::with_capacity(obligations.len());
        for o in &obligations {
            let mut row = new_row(grant, KIND, client);
            row.label = o.tax.as_str().to_owned();
            row.period = Some(o.period.as_string());
            row.due_on = Some(o.due.as_string());
            row.status = Some(FilingStatus::Todo.as_str().to_owned());
            row.plain = to_json(&Plain {
                tax: o.tax,
                period: o.period,
                due: o.due,
                filed_on: None,
                note: None,
            })?;
            ops.push(RecordOp::InsertIfAbsent { row });
        }
        let event = self
            .record_event(grant, meta, AuditAction::FilingTasksGenerated, KIND, client)
            .detail(format!("year {}", request.year));
        Ok((
            RecordWrite {
                scope: grant.scope(),
                client,
                ops,
                event,
            },
            obligations.len(),
        ))
    }

    /// A client's filing tasks in due-date order.
    pub async fn filing_list(
        &self,
        grant: &Grant,
        client: ClientId,
    ) -> Result<Vec<FilingView>, AppError> {
        let today = today();
        self.store
            .record_query(grant.scope(), RecordQuery::of_client(KIND, client), None)
            .await?
            .iter()
            .map(|h| self.filing_view(h, today))
            .collect()
    }

    pub async fn filing_update(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
        update: FilingUpdate,
        meta: &RequestMeta,
    ) -> Result<FilingView, AppError> {
        if update.status == FilingStatus::Overdue {
            return Err(AppError::Invalid(
                "status: overdue follows from the due date and cannot be set".into(),
            ));
        }
        let current = self.record_one(grant, KIND, client, id).await?;
        let mut plain: Plain = self.plain_json(&current.row)?;
        let today = today();
        plain.filed_on = (update.status == FilingStatus::Filed).then_some(today);
        if update.note.is_some() {
            plain.note = update.note;
        }
        let mut row = current.row.clone();
        row.status = Some(update.status.as_str().to_owned());
        row.plain = to_json(&plain)?;
        row.updated_at_ms = now_ms();
        let event = self
            .record_event(grant, meta, AuditAction::RecordUpdated, KIND, id)
            .fields(&["status"])
            .detail(update.status.as_str());
        self.store
            .record_write(
                grant.scope(),
                client,
                vec![RecordOp::Update {
                    row,
                    expected_version: update.version.unwrap_or(current.row.version),
                    indexes: None,
                }],
                event,
            )
            .await?;
        let hit = self.record_one(grant, KIND, client, id).await?;
        self.filing_view(&hit, today)
    }

    /// What the caller's clients must file: overdue tasks and those due within `days`.
    pub async fn filings_due(&self, grant: &Grant, days: u32) -> Result<FilingsDue, AppError> {
        let today = today();
        let until = today
            .checked_add_days(i64::from(days.min(366)))
            .unwrap_or(today);
        let q = RecordQuery {
            status_in: vec![
                FilingStatus::Todo.as_str().to_owned(),
                FilingStatus::InProgress.as_str().to_owned(),
            ],
            due_until: Some(until.as_string()),
            limit: 2000,
            ..RecordQuery::new(KIND)
        };
        let hits = self.store.record_query(grant.scope(), q, None).await?;
        let mut due = FilingsDue {
            today,
            overdue: Vec::new(),
            due_soon: Vec::new(),
        };
        for hit in &hits {
            let view = self.filing_view(hit, today)?;
            if view.due < today {
                due.overdue.push(view);
            } else {
                due.due_soon.push(view);
            }
        }
        Ok(due)
    }
}
