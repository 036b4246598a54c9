//! Financial records (财务数据) of a client per period: revenue, cost, taxes and the bank
//! accounts they ran through. Everything but the period is sealed.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zf_audit::AuditAction;
use zf_domain::{BankAccount, ClientId, Fen, Notes, Period, RecordId, ShortText};
use zf_policy::{Field, Grant};
use zf_store::{RecordHit, RecordKind, RecordOp, RecordQuery, RecordRow, RecordWrite};

use super::{insert_write, new_row, shown, to_json, KeyCache, RecordMeta};
use crate::{App, AppError, RequestMeta, SensitiveValue};

const KIND: RecordKind = RecordKind::Financial;
const SENSITIVE: &[&str] = &[
    "revenue",
    "cost",
    "vat",
    "cit",
    "iit_withheld",
    "bank_accounts",
    "notes",
];

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BankAccountInput {
    #[schema(value_type = String)]
    pub bank: ShortText,
    #[schema(value_type = String)]
    pub number: BankAccount,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinancialInput {
    /// `2026-03`, `2026-Q1` or `2026`.
    #[schema(value_type = String)]
    pub period: Period,
    /// Amounts in fen (分), whole and non-negative.
    #[schema(value_type = i64, minimum = 0)]
    pub revenue: Fen,
    #[schema(value_type = i64, minimum = 0)]
    pub cost: Fen,
    #[schema(value_type = i64, minimum = 0)]
    pub vat: Fen,
    #[schema(value_type = i64, minimum = 0)]
    pub cit: Fen,
    #[schema(value_type = i64, minimum = 0)]
    pub iit_withheld: Fen,
    #[serde(default)]
    pub bank_accounts: Vec<BankAccountInput>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Notes>,
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct Secret {
    revenue: Fen,
    cost: Fen,
    vat: Fen,
    cit: Fen,
    iit_withheld: Fen,
    bank_accounts: Vec<BankAccountInput>,
    notes: Option<Notes>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BankAccountView {
    pub bank: String,
    pub number: SensitiveValue,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FinancialView {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub period: String,
    pub revenue: i64,
    pub cost: i64,
    /// Revenue minus cost; negative for a loss.
    pub profit: i64,
    pub vat: i64,
    pub cit: i64,
    pub iit_withheld: i64,
    pub bank_accounts: Vec<BankAccountView>,
    pub notes: Option<String>,
}

impl App {
    fn financial_row(
        &self,
        grant: &Grant,
        client: ClientId,
        id: Option<RecordId>,
        dek: &zf_crypto::DekRing,
        input: FinancialInput,
    ) -> Result<RecordRow, AppError> {
        if input.bank_accounts.len() > 20 {
            return Err(AppError::Invalid(
                "bank_accounts: at most 20 per record".into(),
            ));
        }
        let mut row = new_row(grant, KIND, client);
        if let Some(id) = id {
            row.id = id;
        }
        row.label = input.period.as_string();
        row.period = Some(input.period.as_string());
        row.plain = to_json(&serde_json::json!({}))?;
        let secret = Secret {
            revenue: input.revenue,
            cost: input.cost,
            vat: input.vat,
            cit: input.cit,
            iit_withheld: input.iit_withheld,
            bank_accounts: input.bank_accounts,
            notes: input.notes,
        };
        row.sealed = Some(self.seal_json(dek, KIND, row.id, &secret)?);
        Ok(row)
    }

    fn financial_view(
        &self,
        hit: &RecordHit,
        keys: &mut KeyCache<'_>,
        grant: &Grant,
    ) -> Result<FinancialView, AppError> {
        let s: Secret = self.open_json(keys.get(hit.row.client_id, &hit.key)?, &hit.row)?;
        let bank_vis = grant.visibility(Field::BankAccount);
        Ok(FinancialView {
            meta: RecordMeta::of(hit),
            period: hit.row.period.clone().unwrap_or_default(),
            revenue: s.revenue.as_fen(),
            cost: s.cost.as_fen(),
            profit: s.revenue.as_fen() - s.cost.as_fen(),
            vat: s.vat.as_fen(),
            cit: s.cit.as_fen(),
            iit_withheld: s.iit_withheld.as_fen(),
            bank_accounts: s
                .bank_accounts
                .iter()
                .map(|b| BankAccountView {
                    bank: b.bank.as_str().to_owned(),
                    number: shown(bank_vis, b.number.as_str(), || b.number.masked()),
                })
                .collect(),
            notes: s.notes.map(|n| n.as_str().to_owned()),
        })
    }

    pub async fn financial_create(
        &self,
        grant: &Grant,
        client: ClientId,
        input: FinancialInput,
        meta: &RequestMeta,
    ) -> Result<FinancialView, AppError> {
        let (_, dek) = self.scoped_client(grant, client).await?;
        let (id, write) = self.financial_insert(grant, client, &dek, input, meta)?;
        self.record_write_one(write).await?;
        self.financial_get(grant, client, id, meta).await
    }

    /// A new financial record, sealed under `dek`, with its audit event; shared by
    /// `financial_create` and the batched creation.
    pub(crate) fn financial_insert(
        &self,
        grant: &Grant,
        client: ClientId,
        dek: &zf_crypto::DekRing,
        input: FinancialInput,
        meta: &RequestMeta,
    ) -> Result<(RecordId, RecordWrite), AppError> {
        let row = self.financial_row(grant, client, None, dek, input)?;
        let id = row.id;
        let event = self
            .record_event(grant, meta, AuditAction::RecordCreated, KIND, id)
            .fields(SENSITIVE);
        Ok((id, insert_write(grant, row, Vec::new(), event)))
    }

    pub async fn financial_update(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
        input: FinancialInput,
        meta: &RequestMeta,
    ) -> Result<FinancialView, AppError> {
        let (_, dek) = self.scoped_client(grant, client).await?;
        let current = self.record_one(grant, KIND, client, id).await?;
        let version = input.version.unwrap_or(current.row.version);
        let mut row = self.financial_row(grant, client, Some(id), &dek, input)?;
        row.created_by = current.row.created_by;
        row.created_at_ms = current.row.created_at_ms;
        let event = self
            .record_event(grant, meta, AuditAction::RecordUpdated, KIND, id)
            .fields(SENSITIVE);
        self.store
            .record_write(
                grant.scope(),
                client,
                vec![RecordOp::Update {
                    row,
                    expected_version: version,
                    indexes: None,
                }],
                event,
            )
            .await?;
        self.financial_get(grant, client, id, meta).await
    }

    async fn financial_get(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
        meta: &RequestMeta,
    ) -> Result<FinancialView, AppError> {
        let q = RecordQuery {
            id: Some(id),
            ..RecordQuery::of_client(KIND, client)
        };
        self.financials(grant, q, meta)
            .await?
            .into_iter()
            .next()
            .ok_or(AppError::NotFound)
    }

    /// Every financial record of a client, newest period first. The read is audited.
    pub async fn financial_list(
        &self,
        grant: &Grant,
        client: ClientId,
        meta: &RequestMeta,
    ) -> Result<Vec<FinancialView>, AppError> {
        let mut list = self
            .financials(grant, RecordQuery::of_client(KIND, client), meta)
            .await?;
        // Newest period first, in calendar order rather than by the text.
        list.sort_by_key(|f| std::cmp::Reverse(zf_domain::Period::parse(&f.period).ok()));
        Ok(list)
    }

    async fn financials(
        &self,
        grant: &Grant,
        q: RecordQuery,
        meta: &RequestMeta,
    ) -> Result<Vec<FinancialView>, AppError> {
        let on = q.id.map_or_else(
            || q.client.map(|c| c.to_string()).unwrap_or_default(),
            |i| i.to_string(),
        );
        let event = self
            .record_event(grant, meta, AuditAction::RecordSensitiveRead, KIND, on)
            .fields(SENSITIVE);
        let hits = self
            .store
            .record_query(grant.scope(), q, Some(event))
            .await?;
        let mut keys = KeyCache::new(self);
        hits.iter()
            .map(|h| self.financial_view(h, &mut keys, grant))
            .collect()
    }
}
