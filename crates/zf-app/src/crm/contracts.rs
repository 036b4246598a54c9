//! Service contracts (服务合同): what the firm does for a client, for how much, for how long.
//! The terms — fee and notes — are sealed; the type, status and dates stay plain so renewals
//! and arrears can be found without opening every contract.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zf_audit::AuditAction;
use zf_domain::{BillingCycle, ClientId, ContractStatus, ContractType, Date, Fen, Notes, RecordId};
use zf_policy::Grant;
use zf_store::{RecordHit, RecordKind, RecordOp, RecordQuery, RecordRow, RecordWrite};

use super::{insert_write, new_row, to_json, KeyCache, RecordMeta};
use crate::{App, AppError, RequestMeta};

const KIND: RecordKind = RecordKind::Contract;
const SENSITIVE: &[&str] = &["fee", "notes"];

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractInput {
    pub contract_type: ContractType,
    /// The fee per billing cycle (or in total, for a one-off contract), in fen.
    #[schema(value_type = i64, minimum = 0)]
    pub fee: Fen,
    pub billing_cycle: BillingCycle,
    #[schema(value_type = String, format = Date)]
    pub starts_on: Date,
    #[schema(value_type = String, format = Date)]
    pub ends_on: Date,
    #[serde(default = "default_status")]
    pub status: ContractStatus,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Notes>,
    /// The version being replaced; updates only.
    #[serde(default)]
    pub version: Option<i64>,
}

fn default_status() -> ContractStatus {
    ContractStatus::Active
}

#[derive(Serialize, Deserialize)]
struct Plain {
    contract_type: ContractType,
    billing_cycle: BillingCycle,
    starts_on: Date,
    ends_on: Date,
}

#[derive(Serialize, Deserialize)]
struct Secret {
    fee: Fen,
    notes: Option<Notes>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ContractView {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub contract_type: ContractType,
    pub contract_type_label: &'static str,
    #[schema(value_type = i64)]
    pub fee: Fen,
    pub billing_cycle: BillingCycle,
    #[schema(value_type = String, format = Date)]
    pub starts_on: Date,
    #[schema(value_type = String, format = Date)]
    pub ends_on: Date,
    pub status: ContractStatus,
    pub notes: Option<String>,
    /// The signed PDFs attached to the contract (document ids).
    #[schema(value_type = Vec<String>)]
    pub documents: Vec<RecordId>,
}

/// A contract's terms, opened, for fee and arrears calculations.
pub(crate) struct ContractTerms {
    pub hit: RecordHit,
    pub contract_type: ContractType,
    pub fee: Fen,
    pub billing_cycle: BillingCycle,
    pub starts_on: Date,
    pub ends_on: Date,
    pub status: ContractStatus,
}

impl App {
    fn contract_row(
        &self,
        grant: &Grant,
        client: ClientId,
        id: Option<RecordId>,
        dek: &zf_crypto::DekRing,
        input: ContractInput,
    ) -> Result<RecordRow, AppError> {
        if input.ends_on < input.starts_on {
            return Err(AppError::Invalid(
                "ends_on: a contract cannot end before it starts".into(),
            ));
        }
        let mut row = new_row(grant, KIND, client);
        if let Some(id) = id {
            row.id = id;
        }
        row.label = input.contract_type.as_str().to_owned();
        row.status = Some(input.status.as_str().to_owned());
        row.period = Some(input.starts_on.as_string());
        row.due_on = Some(input.ends_on.as_string());
        row.plain = to_json(&Plain {
            contract_type: input.contract_type,
            billing_cycle: input.billing_cycle,
            starts_on: input.starts_on,
            ends_on: input.ends_on,
        })?;
        row.sealed = Some(self.seal_json(
            dek,
            KIND,
            row.id,
            &Secret {
                fee: input.fee,
                notes: input.notes,
            },
        )?);
        Ok(row)
    }

    pub(crate) fn contract_terms(
        &self,
        hit: RecordHit,
        keys: &mut KeyCache<'_>,
    ) -> Result<(ContractTerms, Option<Notes>), AppError> {
        let plain: Plain = self.plain_json(&hit.row)?;
        let secret: Secret = self.open_json(keys.get(hit.row.client_id, &hit.key)?, &hit.row)?;
        let status = hit
            .row
            .status
            .as_deref()
            .and_then(|s| ContractStatus::parse(s).ok())
            .ok_or_else(|| {
                AppError::Internal(format!("contract {} has no valid status", hit.row.id))
            })?;
        Ok((
            ContractTerms {
                hit,
                contract_type: plain.contract_type,
                fee: secret.fee,
                billing_cycle: plain.billing_cycle,
                starts_on: plain.starts_on,
                ends_on: plain.ends_on,
                status,
            },
            secret.notes,
        ))
    }

    pub async fn contract_create(
        &self,
        grant: &Grant,
        client: ClientId,
        input: ContractInput,
        meta: &RequestMeta,
    ) -> Result<ContractView, AppError> {
        let (_, dek) = self.scoped_client(grant, client).await?;
        let (id, write) = self.contract_insert(grant, client, &dek, input, meta)?;
        self.record_write_one(write).await?;
        self.contract_get(grant, client, id, meta).await
    }

    /// A new contract, sealed under `dek`, with its audit event; shared by `contract_create`
    /// and the batched creation.
    pub(crate) fn contract_insert(
        &self,
        grant: &Grant,
        client: ClientId,
        dek: &zf_crypto::DekRing,
        input: ContractInput,
        meta: &RequestMeta,
    ) -> Result<(RecordId, RecordWrite), AppError> {
        let row = self.contract_row(grant, client, None, dek, input)?;
        let id = row.id;
        let event = self
            .record_event(grant, meta, AuditAction::RecordCreated, KIND, id)
            .fields(&[
                "contract_type",
                "fee",
                "billing_cycle",
                "starts_on",
                "ends_on",
            ]);
        Ok((id, insert_write(grant, row, Vec::new(), event)))
    }

    pub async fn contract_update(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
        input: ContractInput,
        meta: &RequestMeta,
    ) -> Result<ContractView, AppError> {
        let (_, dek) = self.scoped_client(grant, client).await?;
        let current = self.record_one(grant, KIND, client, id).await?;
        let version = input.version.unwrap_or(current.row.version);
        let mut row = self.contract_row(grant, client, Some(id), &dek, input)?;
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
        self.contract_get(grant, client, id, meta).await
    }

    pub async fn contract_delete(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        self.record_delete(grant, KIND, client, id, meta).await
    }

    async fn contract_get(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
        meta: &RequestMeta,
    ) -> Result<ContractView, AppError> {
        let q = RecordQuery {
            id: Some(id),
            ..RecordQuery::of_client(KIND, client)
        };
        self.contracts(grant, q, meta)
            .await?
            .into_iter()
            .next()
            .ok_or(AppError::NotFound)
    }

    /// Every contract of a client, terms in the clear (the read is audited).
    pub async fn contract_list(
        &self,
        grant: &Grant,
        client: ClientId,
        meta: &RequestMeta,
    ) -> Result<Vec<ContractView>, AppError> {
        self.contracts(grant, RecordQuery::of_client(KIND, client), meta)
            .await
    }

    async fn contracts(
        &self,
        grant: &Grant,
        q: RecordQuery,
        meta: &RequestMeta,
    ) -> Result<Vec<ContractView>, AppError> {
        let client = q.client;
        let on = q.id.map_or_else(
            || client.map(|c| c.to_string()).unwrap_or_default(),
            |i| i.to_string(),
        );
        let event = self
            .record_event(grant, meta, AuditAction::RecordSensitiveRead, KIND, on)
            .fields(SENSITIVE);
        let hits = self
            .store
            .record_query(grant.scope(), q, Some(event))
            .await?;
        let documents = match client {
            Some(c) => {
                self.store
                    .record_query(
                        grant.scope(),
                        RecordQuery::of_client(RecordKind::Document, c),
                        None,
                    )
                    .await?
            }
            None => Vec::new(),
        };
        let mut keys = KeyCache::new(self);
        hits.into_iter()
            .map(|hit| {
                let (t, notes) = self.contract_terms(hit, &mut keys)?;
                let docs = documents
                    .iter()
                    .filter(|d| d.row.parent_id == Some(t.hit.row.id))
                    .map(|d| d.row.id)
                    .collect();
                Ok(ContractView {
                    meta: RecordMeta::of(&t.hit),
                    contract_type: t.contract_type,
                    contract_type_label: t.contract_type.label_zh(),
                    fee: t.fee,
                    billing_cycle: t.billing_cycle,
                    starts_on: t.starts_on,
                    ends_on: t.ends_on,
                    status: t.status,
                    notes: notes.map(|n| n.as_str().to_owned()),
                    documents: docs,
                })
            })
            .collect()
    }
}
