//! Interactions with a client (跟进记录): calls, visits, WeChat, meetings, with an optional
//! follow-up date that reminds whoever logged it. The summary is sealed: people write
//! anything into it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zf_audit::AuditAction;
use zf_domain::{ClientId, Date, InteractionKind, Notes, RecordId};
use zf_policy::Grant;
use zf_store::{RecordHit, RecordKind, RecordOp, RecordQuery, RecordRow, RecordWrite};

use super::{filings::today, insert_write, new_row, to_json, KeyCache, RecordMeta};
use crate::{App, AppError, RequestMeta};

const KIND: RecordKind = RecordKind::Interaction;
const OPEN: &str = "open";
const DONE: &str = "done";

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InteractionInput {
    pub kind: InteractionKind,
    #[schema(value_type = String, format = Date)]
    pub occurred_on: Date,
    #[schema(value_type = String)]
    pub summary: Notes,
    /// When to follow up, if at all.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub follow_up_on: Option<Date>,
    #[serde(default)]
    pub follow_up_done: bool,
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct Plain {
    kind: InteractionKind,
    occurred_on: Date,
    follow_up_on: Option<Date>,
    follow_up_done: bool,
}

#[derive(Serialize, Deserialize)]
struct Secret {
    summary: Notes,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct InteractionView {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub kind: InteractionKind,
    pub kind_label: &'static str,
    #[schema(value_type = String, format = Date)]
    pub occurred_on: Date,
    pub summary: String,
    #[schema(value_type = Option<String>, format = Date)]
    pub follow_up_on: Option<Date>,
    pub follow_up_done: bool,
    /// A follow-up that is not done and whose date has come.
    pub follow_up_due: bool,
}

impl App {
    fn interaction_row(
        &self,
        grant: &Grant,
        client: ClientId,
        id: Option<RecordId>,
        dek: &zf_crypto::DekRing,
        input: InteractionInput,
    ) -> Result<RecordRow, AppError> {
        let mut row = new_row(grant, KIND, client);
        if let Some(id) = id {
            row.id = id;
        }
        row.label = input.kind.as_str().to_owned();
        row.period = Some(input.occurred_on.as_string());
        if let Some(on) = input.follow_up_on {
            row.due_on = Some(on.as_string());
            row.status = Some(if input.follow_up_done { DONE } else { OPEN }.to_owned());
            row.holder = grant.principal().map(|p| p.user_id);
        }
        row.plain = to_json(&Plain {
            kind: input.kind,
            occurred_on: input.occurred_on,
            follow_up_on: input.follow_up_on,
            follow_up_done: input.follow_up_done,
        })?;
        row.sealed = Some(self.seal_json(
            dek,
            KIND,
            row.id,
            &Secret {
                summary: input.summary,
            },
        )?);
        Ok(row)
    }

    fn interaction_view(
        &self,
        hit: &RecordHit,
        keys: &mut KeyCache<'_>,
        today: Date,
    ) -> Result<InteractionView, AppError> {
        let p: Plain = self.plain_json(&hit.row)?;
        let s: Secret = self.open_json(keys.get(hit.row.client_id, &hit.key)?, &hit.row)?;
        Ok(InteractionView {
            meta: RecordMeta::of(hit),
            kind: p.kind,
            kind_label: p.kind.label_zh(),
            occurred_on: p.occurred_on,
            summary: s.summary.as_str().to_owned(),
            follow_up_on: p.follow_up_on,
            follow_up_done: p.follow_up_done,
            follow_up_due: !p.follow_up_done && p.follow_up_on.is_some_and(|d| d <= today),
        })
    }

    pub async fn interaction_create(
        &self,
        grant: &Grant,
        client: ClientId,
        input: InteractionInput,
        meta: &RequestMeta,
    ) -> Result<InteractionView, AppError> {
        let (_, dek) = self.scoped_client(grant, client).await?;
        let (id, write) = self.interaction_insert(grant, client, &dek, input, meta)?;
        self.record_write_one(write).await?;
        self.interaction_get(grant, client, id).await
    }

    /// A new interaction, sealed under `dek`, with its audit event; shared by
    /// `interaction_create` and the batched creation.
    pub(crate) fn interaction_insert(
        &self,
        grant: &Grant,
        client: ClientId,
        dek: &zf_crypto::DekRing,
        input: InteractionInput,
        meta: &RequestMeta,
    ) -> Result<(RecordId, RecordWrite), AppError> {
        let row = self.interaction_row(grant, client, None, dek, input)?;
        let id = row.id;
        let event = self
            .record_event(grant, meta, AuditAction::RecordCreated, KIND, id)
            .fields(&["kind", "occurred_on", "summary", "follow_up_on"]);
        Ok((id, insert_write(grant, row, Vec::new(), event)))
    }

    pub async fn interaction_update(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
        input: InteractionInput,
        meta: &RequestMeta,
    ) -> Result<InteractionView, AppError> {
        let (_, dek) = self.scoped_client(grant, client).await?;
        let current = self.record_one(grant, KIND, client, id).await?;
        let version = input.version.unwrap_or(current.row.version);
        let mut row = self.interaction_row(grant, client, Some(id), &dek, input)?;
        row.created_by = current.row.created_by;
        row.created_at_ms = current.row.created_at_ms;
        let event = self
            .record_event(grant, meta, AuditAction::RecordUpdated, KIND, id)
            .fields(&["kind", "occurred_on", "summary", "follow_up_on"]);
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
        self.interaction_get(grant, client, id).await
    }

    async fn interaction_get(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
    ) -> Result<InteractionView, AppError> {
        let hit = self.record_one(grant, KIND, client, id).await?;
        self.interaction_view(&hit, &mut KeyCache::new(self), today())
    }

    /// A client's interactions, newest first.
    pub async fn interaction_list(
        &self,
        grant: &Grant,
        client: ClientId,
    ) -> Result<Vec<InteractionView>, AppError> {
        let hits = self
            .store
            .record_query(grant.scope(), RecordQuery::of_client(KIND, client), None)
            .await?;
        let (mut keys, today) = (KeyCache::new(self), today());
        let mut list = hits
            .iter()
            .map(|h| self.interaction_view(h, &mut keys, today))
            .collect::<Result<Vec<_>, _>>()?;
        list.sort_by(|a, b| {
            b.occurred_on
                .cmp(&a.occurred_on)
                .then(b.meta.created_at.cmp(&a.meta.created_at))
        });
        Ok(list)
    }

    /// The caller's own open follow-ups that are due today or earlier.
    pub async fn follow_ups_due(&self, grant: &Grant) -> Result<Vec<InteractionView>, AppError> {
        let today = today();
        let q = RecordQuery {
            status_in: vec![OPEN.to_owned()],
            due_until: Some(today.as_string()),
            holder: grant.principal().map(|p| p.user_id),
            limit: 500,
            ..RecordQuery::new(KIND)
        };
        let hits = self.store.record_query(grant.scope(), q, None).await?;
        let mut keys = KeyCache::new(self);
        hits.iter()
            .map(|h| self.interaction_view(h, &mut keys, today))
            .collect()
    }
}
