//! Leads (线索): prospective clients — often a company still to be registered — moved through
//! a simple pipeline and converted into a client once signed. A lead's contact details are
//! sealed under a data key of its own, kept in its row.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zf_audit::{AuditAction, AuditEvent, Outcome};
use zf_crypto::{Aad, DekRing};
use zf_domain::{
    ClientId, ClientName, IdNumber, LeadId, LeadStage, Mobile, Notes, PersonName, ShortText,
    TaxpayerType, Uscc, UserId,
};
use zf_policy::{Field, Grant, Scope};
use zf_store::LeadRow;

use super::shown;
use crate::{actor, now_ms, App, AppError, RequestMeta, SensitiveValue};

const TABLE: &str = "leads";
const MOBILE_INDEX: &str = "lead.mobile";

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadInput {
    #[schema(value_type = String)]
    pub company_name: ClientName,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub contact_name: Option<PersonName>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub mobile: Option<Mobile>,
    /// Where the lead came from: 转介绍, 线上咨询 …
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub source: Option<ShortText>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Notes>,
    #[serde(default)]
    pub stage: Option<LeadStage>,
    /// The version being replaced; updates only.
    #[serde(default)]
    pub version: Option<i64>,
}

/// An exact search of leads by mobile number.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadQuery {
    #[schema(value_type = String)]
    pub mobile: Mobile,
}

/// What a won lead needs to become a client: the registered company's identity.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadConversion {
    #[schema(value_type = String)]
    pub uscc: Uscc,
    pub taxpayer_type: TaxpayerType,
    #[schema(value_type = String)]
    pub legal_rep_name: PersonName,
    #[schema(value_type = String)]
    pub legal_rep_id_number: IdNumber,
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct Secret {
    contact_name: Option<PersonName>,
    mobile: Option<Mobile>,
    notes: Option<Notes>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LeadView {
    #[schema(value_type = String, format = Uuid)]
    pub id: LeadId,
    pub company_name: String,
    pub stage: LeadStage,
    pub stage_label: &'static str,
    pub source: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub owner: Option<UserId>,
    pub contact_name: Option<String>,
    pub mobile: Option<SensitiveValue>,
    pub notes: Option<String>,
    /// The client it became, once converted.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub client_id: Option<ClientId>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

/// A lead's notes carry over to the client it becomes.
fn current_notes(view: &LeadView) -> Option<Notes> {
    view.notes.as_deref().and_then(|n| Notes::parse(n).ok())
}

pub(crate) fn aad(id: LeadId) -> Aad {
    Aad::new(TABLE, id.to_string(), "sealed")
}

impl App {
    fn lead_event(
        &self,
        grant: &Grant,
        meta: &RequestMeta,
        action: AuditAction,
        id: LeadId,
    ) -> AuditEvent {
        AuditEvent::new(now_ms(), actor(grant, meta), action, Outcome::Success)
            .request(meta.request_id.clone())
            .on(TABLE, id)
    }

    fn lead_seal(
        &self,
        dek: &DekRing,
        id: LeadId,
        input: &LeadInput,
    ) -> Result<zf_crypto::Sealed, AppError> {
        let secret = Secret {
            contact_name: input.contact_name.clone(),
            mobile: input.mobile.clone(),
            notes: input.notes.clone(),
        };
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(&secret).map_err(|e| AppError::Internal(e.to_string()))?,
        );
        Ok(dek.seal(&plain, &aad(id)))
    }

    fn lead_mobile_index(&self, mobile: Option<&Mobile>) -> Option<zf_crypto::BlindIndex> {
        mobile.map(|m| self.keys.index(MOBILE_INDEX, m.as_str()))
    }

    fn lead_secret(&self, row: &LeadRow) -> Result<Secret, AppError> {
        let dek = self.keys.lead_key(row.id, &row.key)?;
        let plain = zeroize::Zeroizing::new(dek.open(&row.sealed, &aad(row.id))?);
        serde_json::from_slice(&plain)
            .map_err(|e| AppError::Internal(format!("sealed lead {} does not parse: {e}", row.id)))
    }

    /// A lead's mobile token from its sealed part, as a write computes it: a re-index computes
    /// it again under a new blind-index key.
    pub(crate) fn lead_mobile_token(
        &self,
        row: &LeadRow,
    ) -> Result<Option<zf_crypto::BlindIndex>, AppError> {
        Ok(self.lead_mobile_index(self.lead_secret(row)?.mobile.as_ref()))
    }

    fn lead_view(&self, grant: &Grant, row: &LeadRow) -> Result<LeadView, AppError> {
        let s = self.lead_secret(row)?;
        let stage = LeadStage::parse(&row.stage)
            .map_err(|_| AppError::Internal(format!("lead {} has stage {}", row.id, row.stage)))?;
        let vis = grant.visibility(Field::ContactMobile);
        Ok(LeadView {
            id: row.id,
            company_name: row.company_name.clone(),
            stage,
            stage_label: stage.label_zh(),
            source: row.source.clone(),
            owner: row.owner,
            contact_name: s.contact_name.map(|n| n.as_str().to_owned()),
            mobile: s.mobile.map(|m| shown(vis, m.as_str(), || m.masked())),
            notes: s.notes.map(|n| n.as_str().to_owned()),
            client_id: row.client_id,
            created_at: row.created_at_ms,
            updated_at: row.updated_at_ms,
            version: row.version,
        })
    }

    fn lead_in_scope(grant: &Grant, row: &LeadRow) -> bool {
        match grant.scope() {
            Scope::All => true,
            // Leads are no client yet and belong to no team: a team-scoped role reaches the
            // leads its holder owns.
            Scope::AssignedTo(user) | Scope::Team(user) => row.owner == Some(user),
            // Leads are no client yet, so a token that names its clients reaches none.
            Scope::None | Scope::Engaged(_) | Scope::Listed { .. } => false,
        }
    }

    async fn lead_scoped(&self, grant: &Grant, id: LeadId) -> Result<LeadRow, AppError> {
        self.store
            .lead_get(id)
            .await?
            .filter(|row| Self::lead_in_scope(grant, row))
            .ok_or(AppError::NotFound)
    }

    pub async fn lead_create(
        &self,
        grant: &Grant,
        input: LeadInput,
        meta: &RequestMeta,
    ) -> Result<LeadView, AppError> {
        let id = LeadId::new_random();
        let (dek, wrapped) = self.keys.new_lead_key(id)?;
        let now = now_ms();
        let row = LeadRow {
            id,
            company_name: input.company_name.as_str().to_owned(),
            stage: input.stage.unwrap_or(LeadStage::New).as_str().to_owned(),
            source: input.source.as_ref().map(|s| s.as_str().to_owned()),
            owner: grant.principal().map(|p| p.user_id),
            sealed: self.lead_seal(&dek, id, &input)?,
            mobile_index: self.lead_mobile_index(input.mobile.as_ref()),
            key: wrapped,
            client_id: None,
            created_at_ms: now,
            updated_at_ms: now,
            version: 1,
        };
        let event = self
            .lead_event(grant, meta, AuditAction::LeadCreated, id)
            .fields(&["company_name", "contact_name", "mobile", "notes"]);
        self.store.lead_insert(row.clone(), event).await?;
        self.lead_view(grant, &row)
    }

    pub async fn lead_list(&self, grant: &Grant) -> Result<Vec<LeadView>, AppError> {
        let Some(owner) = Self::lead_owner_filter(grant) else {
            return Ok(Vec::new());
        };
        self.store
            .lead_list(owner, 1000)
            .await?
            .iter()
            .map(|r| self.lead_view(grant, r))
            .collect()
    }

    /// Which leads a grant reaches: `Some(None)` all, `Some(Some(user))` those `user` owns,
    /// `None` none.
    fn lead_owner_filter(grant: &Grant) -> Option<Option<UserId>> {
        match grant.scope() {
            Scope::All => Some(None),
            Scope::AssignedTo(user) | Scope::Team(user) => Some(Some(user)),
            Scope::None | Scope::Engaged(_) | Scope::Listed { .. } => None,
        }
    }

    /// Leads in scope with this mobile number, found through its blind index; the search is
    /// audited whatever it finds.
    pub async fn lead_search_mobile(
        &self,
        grant: &Grant,
        mobile: &Mobile,
        meta: &RequestMeta,
    ) -> Result<Vec<LeadView>, AppError> {
        let event = AuditEvent::new(
            now_ms(),
            actor(grant, meta),
            AuditAction::RecordSearched,
            Outcome::Success,
        )
        .request(meta.request_id.clone())
        .on(TABLE, "")
        .fields(&["mobile"]);
        self.store.audit_append(event).await?;
        let Some(owner) = Self::lead_owner_filter(grant) else {
            return Ok(Vec::new());
        };
        self.store
            .lead_find_by_mobile(
                owner,
                self.keys.index_candidates(MOBILE_INDEX, mobile.as_str()),
                100,
            )
            .await?
            .iter()
            .map(|r| self.lead_view(grant, r))
            .collect()
    }

    pub async fn lead_update(
        &self,
        grant: &Grant,
        id: LeadId,
        input: LeadInput,
        meta: &RequestMeta,
    ) -> Result<LeadView, AppError> {
        let current = self.lead_scoped(grant, id).await?;
        if current.client_id.is_some() {
            return Err(AppError::Conflict(
                "the lead was converted into a client already".into(),
            ));
        }
        let dek = self.keys.lead_key(id, &current.key)?;
        let mut row = current.clone();
        row.company_name = input.company_name.as_str().to_owned();
        if let Some(stage) = input.stage {
            row.stage = stage.as_str().to_owned();
        }
        row.source = input.source.as_ref().map(|s| s.as_str().to_owned());
        row.sealed = self.lead_seal(&dek, id, &input)?;
        row.mobile_index = self.lead_mobile_index(input.mobile.as_ref());
        row.updated_at_ms = now_ms();
        let version = input.version.unwrap_or(current.version);
        let event = self
            .lead_event(grant, meta, AuditAction::LeadUpdated, id)
            .fields(&["company_name", "stage", "contact_name", "mobile", "notes"]);
        self.store.lead_update(row, version, event).await?;
        let updated = self.lead_scoped(grant, id).await?;
        self.lead_view(grant, &updated)
    }

    /// Turns a lead into a client (status signed) and marks it won, in one transaction.
    pub async fn lead_convert(
        &self,
        grant: &Grant,
        id: LeadId,
        conversion: LeadConversion,
        meta: &RequestMeta,
    ) -> Result<crate::ClientView, AppError> {
        let current = self.lead_scoped(grant, id).await?;
        if current.client_id.is_some() {
            return Err(AppError::Conflict(
                "the lead was converted into a client already".into(),
            ));
        }
        let name = ClientName::parse(&current.company_name)
            .map_err(|e| AppError::Internal(format!("lead {id} has an invalid name: {e}")))?;
        let new = zf_domain::NewClient {
            name,
            uscc: conversion.uscc,
            taxpayer_type: conversion.taxpayer_type,
            legal_rep_name: conversion.legal_rep_name,
            legal_rep_id_number: conversion.legal_rep_id_number,
            status: Some(zf_domain::ClientStatus::Signed),
            tags: None,
            team: None,
            notes: current_notes(&self.lead_view(grant, &current)?),
            registered_capital: None,
            tax_authority: None,
        };
        let (record, dek) = self.client_row(grant, new, None)?;
        let mut lead = current.clone();
        lead.stage = LeadStage::Won.as_str().to_owned();
        lead.client_id = Some(record.row.id);
        lead.updated_at_ms = now_ms();
        let event = self
            .lead_event(grant, meta, AuditAction::LeadConverted, id)
            .detail(format!("client {}", record.row.id));
        let version = conversion.version.unwrap_or(current.version);
        self.store
            .lead_convert(
                lead,
                version,
                record.row.clone(),
                record.key.current.wrapped.clone(),
                event,
            )
            .await?;
        self.client_view_at(grant, &record, &dek)
    }
}
