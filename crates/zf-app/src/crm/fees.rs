//! Fees and arrears (收费/欠费): what each contract has billed so far by its cycle, what the
//! client has paid against it, what is overdue, and which contracts need renewing (续费提醒).
//! Amounts are contract terms and stay sealed; the report opens them per request.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zf_audit::AuditAction;
use zf_domain::{
    BillingCycle, ClientId, ContractStatus, ContractType, Date, Fen, Notes, RecordId, ShortText,
};
use zf_policy::Grant;
use zf_store::{RecordHit, RecordKind, RecordOp, RecordQuery};

use super::contracts::ContractTerms;
use super::{filings::today, new_row, to_json, KeyCache, RecordMeta};
use crate::{App, AppError, RequestMeta};

const KIND: RecordKind = RecordKind::Payment;
/// How far ahead a contract's end raises a renewal reminder.
pub const RENEWAL_WINDOW_DAYS: i64 = 30;

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    #[schema(value_type = String, format = Uuid)]
    pub contract: RecordId,
    #[schema(value_type = i64, minimum = 1)]
    pub amount: Fen,
    #[schema(value_type = String, format = Date)]
    pub paid_on: Date,
    /// 转账, 现金, 微信 …
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub method: Option<ShortText>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub note: Option<Notes>,
}

#[derive(Serialize, Deserialize)]
struct Plain {
    paid_on: Date,
    method: Option<ShortText>,
}

#[derive(Serialize, Deserialize)]
struct Secret {
    amount: Fen,
    note: Option<Notes>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PaymentView {
    #[serde(flatten)]
    pub meta: RecordMeta,
    #[schema(value_type = String, format = Uuid)]
    pub contract: RecordId,
    pub amount: i64,
    #[schema(value_type = String, format = Date)]
    pub paid_on: Date,
    pub method: Option<String>,
    pub note: Option<String>,
}

/// One contract's account: billed to date, paid, and the difference.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ContractBalance {
    #[schema(value_type = String, format = Uuid)]
    pub contract: RecordId,
    #[schema(value_type = String, format = Uuid)]
    pub client_id: ClientId,
    pub client_name: String,
    pub contract_type: ContractType,
    pub contract_type_label: &'static str,
    pub billing_cycle: BillingCycle,
    pub fee: i64,
    #[schema(value_type = String, format = Date)]
    pub starts_on: Date,
    #[schema(value_type = String, format = Date)]
    pub ends_on: Date,
    pub status: ContractStatus,
    /// Fen billed by the cycles that have started, up to today or the contract's end.
    pub billed: i64,
    pub paid: i64,
    /// Billed minus paid; negative when the client paid ahead.
    pub arrears: i64,
    /// An active contract ending within the renewal window (or already ended).
    pub renewal_due: bool,
    pub days_to_end: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FeesReport {
    #[schema(value_type = String, format = Date)]
    pub today: Date,
    pub contracts: Vec<ContractBalance>,
    pub total_arrears: i64,
}

/// The date `months` after `start`, on the same day or the month's last day.
fn add_months(start: Date, months: u32) -> Option<Date> {
    let total = start.year() * 12 + (start.month() as i32 - 1) + months as i32;
    let (year, month) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
    let day = start
        .day()
        .min(zf_domain::date::days_in_month(year, month)?);
    Date::new(year, month, day).ok()
}

/// How much a contract has billed by `today`: one fee per cycle that has started, counting
/// only cycles that start on or before the contract's end.
pub(crate) fn billed_by(terms: &ContractTerms, today: Date) -> i64 {
    if terms.status == ContractStatus::Draft || today < terms.starts_on {
        return 0;
    }
    let Some(months) = terms.billing_cycle.months() else {
        return terms.fee.as_fen();
    };
    terms.fee.as_fen().saturating_mul(cycles_started(
        terms.starts_on,
        terms.ends_on,
        months,
        today,
    ))
}

/// Cycles of `months` from `starts_on` that have begun by `today` and before `ends_on`.
fn cycles_started(starts_on: Date, ends_on: Date, months: u32, today: Date) -> i64 {
    let until = today.min(ends_on);
    let mut cycles: u32 = 0;
    while let Some(start) = months
        .checked_mul(cycles)
        .and_then(|m| add_months(starts_on, m))
    {
        if start > until || cycles >= 1200 {
            break;
        }
        cycles += 1;
    }
    i64::from(cycles)
}

impl App {
    fn payment_view(
        &self,
        hit: &RecordHit,
        keys: &mut KeyCache<'_>,
    ) -> Result<PaymentView, AppError> {
        let p: Plain = self.plain_json(&hit.row)?;
        let s: Secret = self.open_json(keys.get(hit.row.client_id, &hit.key)?, &hit.row)?;
        Ok(PaymentView {
            meta: RecordMeta::of(hit),
            contract: hit.row.parent_id.ok_or_else(|| {
                AppError::Internal(format!("payment {} has no contract", hit.row.id))
            })?,
            amount: s.amount.as_fen(),
            paid_on: p.paid_on,
            method: p.method.map(|m| m.as_str().to_owned()),
            note: s.note.map(|n| n.as_str().to_owned()),
        })
    }

    pub async fn payment_create(
        &self,
        grant: &Grant,
        client: ClientId,
        input: PaymentInput,
        meta: &RequestMeta,
    ) -> Result<PaymentView, AppError> {
        if input.amount.as_fen() == 0 {
            return Err(AppError::Invalid(
                "amount: a payment must be more than 0".into(),
            ));
        }
        let (_, dek) = self.scoped_client(grant, client).await?;
        self.record_one(grant, RecordKind::Contract, client, input.contract)
            .await?;
        let mut row = new_row(grant, KIND, client);
        row.parent_id = Some(input.contract);
        row.label = input.paid_on.as_string();
        row.period = Some(input.paid_on.as_string());
        row.plain = to_json(&Plain {
            paid_on: input.paid_on,
            method: input.method,
        })?;
        row.sealed = Some(self.seal_json(
            &dek,
            KIND,
            row.id,
            &Secret {
                amount: input.amount,
                note: input.note,
            },
        )?);
        let id = row.id;
        let event = self
            .record_event(grant, meta, AuditAction::RecordCreated, KIND, id)
            .fields(&["amount", "paid_on", "note"]);
        self.store
            .record_write(
                grant.scope(),
                client,
                vec![RecordOp::Insert {
                    row,
                    indexes: Vec::new(),
                    blob: None,
                }],
                event,
            )
            .await?;
        let hit = self.record_one(grant, KIND, client, id).await?;
        self.payment_view(&hit, &mut KeyCache::new(self))
    }

    pub async fn payment_list(
        &self,
        grant: &Grant,
        client: ClientId,
    ) -> Result<Vec<PaymentView>, AppError> {
        let hits = self
            .store
            .record_query(grant.scope(), RecordQuery::of_client(KIND, client), None)
            .await?;
        let mut keys = KeyCache::new(self);
        let mut list = hits
            .iter()
            .map(|h| self.payment_view(h, &mut keys))
            .collect::<Result<Vec<_>, _>>()?;
        list.sort_by_key(|p| std::cmp::Reverse(p.paid_on));
        Ok(list)
    }

    /// Balances of the contracts of one client, or of every client in scope with arrears or a
    /// renewal due. Opening the terms is an audited sensitive read.
    pub async fn fees_report(
        &self,
        grant: &Grant,
        client: Option<ClientId>,
        meta: &RequestMeta,
    ) -> Result<FeesReport, AppError> {
        let query = |kind| RecordQuery {
            client,
            limit: 100_000,
            ..RecordQuery::new(kind)
        };
        let event = self
            .record_event(
                grant,
                meta,
                AuditAction::RecordSensitiveRead,
                RecordKind::Contract,
                client.map(|c| c.to_string()).unwrap_or_default(),
            )
            .fields(&["fee", "amount"]);
        let (contracts, payments) = tokio::try_join!(
            self.store
                .record_query(grant.scope(), query(RecordKind::Contract), Some(event)),
            self.store.record_query(grant.scope(), query(KIND), None),
        )?;
        let today = today();
        let mut keys = KeyCache::new(self);
        let mut paid: std::collections::HashMap<RecordId, i64> = Default::default();
        for p in &payments {
            let view = self.payment_view(p, &mut keys)?;
            *paid.entry(view.contract).or_default() += view.amount;
        }
        let mut out = Vec::new();
        for hit in contracts {
            let (t, _) = self.contract_terms(hit, &mut keys)?;
            let billed = billed_by(&t, today);
            let paid = paid.get(&t.hit.row.id).copied().unwrap_or(0);
            let days_to_end = today.days_until(t.ends_on);
            let renewal_due =
                t.status == ContractStatus::Active && days_to_end <= RENEWAL_WINDOW_DAYS;
            let arrears = billed - paid;
            if client.is_none() && arrears <= 0 && !renewal_due {
                continue;
            }
            out.push(ContractBalance {
                contract: t.hit.row.id,
                client_id: t.hit.row.client_id,
                client_name: t.hit.client_name.as_str().to_owned(),
                contract_type: t.contract_type,
                contract_type_label: t.contract_type.label_zh(),
                billing_cycle: t.billing_cycle,
                fee: t.fee.as_fen(),
                starts_on: t.starts_on,
                ends_on: t.ends_on,
                status: t.status,
                billed,
                paid,
                arrears,
                renewal_due,
                days_to_end,
            });
        }
        out.sort_by(|a, b| {
            b.arrears
                .cmp(&a.arrears)
                .then(a.days_to_end.cmp(&b.days_to_end))
        });
        Ok(FeesReport {
            today,
            total_arrears: out.iter().map(|c| c.arrears.max(0)).sum(),
            contracts: out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn months_are_added_clamped_to_the_months_end() {
        assert_eq!(add_months(d("2026-01-31"), 1), Some(d("2026-02-28")));
        assert_eq!(add_months(d("2026-11-15"), 3), Some(d("2027-02-15")));
        assert_eq!(add_months(d("2024-02-29"), 12), Some(d("2025-02-28")));
    }

    #[test]
    fn cycles_count_those_begun_by_today_and_before_the_end() {
        let (start, end) = (d("2026-01-01"), d("2026-12-31"));
        assert_eq!(cycles_started(start, end, 1, d("2025-12-31")), 0);
        assert_eq!(cycles_started(start, end, 1, d("2026-01-01")), 1);
        assert_eq!(cycles_started(start, end, 1, d("2026-03-15")), 3);
        assert_eq!(cycles_started(start, end, 3, d("2026-04-01")), 2);
        assert_eq!(cycles_started(start, end, 12, d("2026-06-01")), 1);
        // After the end no new cycle begins.
        assert_eq!(cycles_started(start, end, 1, d("2028-01-01")), 12);
    }
}
