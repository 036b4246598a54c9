//! Custody of a client's tax UKey, CA certificate and seals (税务UKey/CA证书/印章托管): which
//! item is in the safe, who has taken it out, why, and until when. Every movement is a record
//! of its own and an audit event; a return past its date shows as overdue.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zf_audit::AuditAction;
use zf_domain::{ClientId, CustodyKind, Date, Notes, RecordId, ShortText, UserId};
use zf_policy::Grant;
use zf_store::{RecordHit, RecordKind, RecordOp, RecordQuery};

use super::{filings::today, new_row, to_json, RecordMeta};
use crate::{now_ms, App, AppError, RequestMeta};

const KIND: RecordKind = RecordKind::CustodyItem;
const MOVEMENT: RecordKind = RecordKind::CustodyMovement;
const IN_SAFE: &str = "in_safe";
const CHECKED_OUT: &str = "checked_out";
const RETURNED: &str = "returned_to_client";

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustodyItemInput {
    pub kind: CustodyKind,
    /// What distinguishes it, e.g. 金税盘 or 公章（圆形）.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub description: Option<ShortText>,
}

/// Taking an item out of the safe, or putting it back.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, tag = "action", rename_all = "snake_case")]
pub enum CustodyMove {
    CheckOut {
        #[schema(value_type = String)]
        reason: Notes,
        /// When it must be back in the safe.
        #[schema(value_type = String, format = Date)]
        due_back: Date,
        /// Who takes it; the caller when absent.
        #[serde(default)]
        #[schema(value_type = Option<String>, format = Uuid)]
        holder: Option<UserId>,
    },
    CheckIn {
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        note: Option<Notes>,
    },
    /// Handed back to the client for good (the engagement ended).
    ReturnToClient {
        #[schema(value_type = String)]
        reason: Notes,
    },
}

#[derive(Serialize, Deserialize)]
struct ItemPlain {
    kind: CustodyKind,
    description: Option<ShortText>,
}

#[derive(Serialize, Deserialize)]
struct MovementPlain {
    action: String,
    by: Option<UserId>,
    holder: Option<UserId>,
    reason: Option<Notes>,
    due_back: Option<Date>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CustodyMovementView {
    pub action: String,
    /// Unix time in milliseconds.
    pub at: i64,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub by: Option<UserId>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub holder: Option<UserId>,
    pub reason: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub due_back: Option<Date>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CustodyItemView {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub kind: CustodyKind,
    pub kind_label: &'static str,
    pub description: Option<String>,
    /// `in_safe`, `checked_out` or `returned_to_client`.
    pub status: String,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub holder: Option<UserId>,
    #[schema(value_type = Option<String>, format = Date)]
    pub due_back: Option<Date>,
    pub overdue: bool,
    /// Newest first.
    pub movements: Vec<CustodyMovementView>,
}

impl App {
    fn custody_view(
        &self,
        hit: &RecordHit,
        movements: &[RecordHit],
        today: Date,
    ) -> Result<CustodyItemView, AppError> {
        let p: ItemPlain = self.plain_json(&hit.row)?;
        let status = hit.row.status.clone().unwrap_or_else(|| IN_SAFE.into());
        let due_back = hit.row.due_on.as_deref().and_then(|d| Date::parse(d).ok());
        let mut moves = movements
            .iter()
            .filter(|m| m.row.parent_id == Some(hit.row.id))
            .map(|m| {
                let mp: MovementPlain = self.plain_json(&m.row)?;
                Ok(CustodyMovementView {
                    action: mp.action,
                    at: m.row.created_at_ms,
                    by: mp.by,
                    holder: mp.holder,
                    reason: mp.reason.map(|r| r.as_str().to_owned()),
                    due_back: mp.due_back,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        moves.sort_by_key(|m| std::cmp::Reverse(m.at));
        Ok(CustodyItemView {
            meta: RecordMeta::of(hit),
            kind: p.kind,
            kind_label: p.kind.label_zh(),
            description: p.description.map(|d| d.as_str().to_owned()),
            overdue: status == CHECKED_OUT && due_back.is_some_and(|d| d < today),
            status,
            holder: hit.row.holder,
            due_back,
            movements: moves,
        })
    }

    pub async fn custody_create(
        &self,
        grant: &Grant,
        client: ClientId,
        input: CustodyItemInput,
        meta: &RequestMeta,
    ) -> Result<CustodyItemView, AppError> {
        let mut row = new_row(grant, KIND, client);
        row.label = input.kind.as_str().to_owned();
        row.status = Some(IN_SAFE.into());
        row.plain = to_json(&ItemPlain {
            kind: input.kind,
            description: input.description,
        })?;
        let id = row.id;
        let event = self
            .record_event(grant, meta, AuditAction::RecordCreated, KIND, id)
            .detail(input.kind.as_str());
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
        self.custody_get(grant, client, id).await
    }

    /// Checks an item out, back in, or returns it to the client, with its movement record and
    /// audit event in one transaction.
    pub async fn custody_move(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
        movement: CustodyMove,
        meta: &RequestMeta,
    ) -> Result<CustodyItemView, AppError> {
        let current = self.record_one(grant, KIND, client, id).await?;
        let status = current.row.status.as_deref().unwrap_or(IN_SAFE);
        let by = grant.principal().map(|p| p.user_id);
        let mut item = current.row.clone();
        item.updated_at_ms = now_ms();
        let (action, audit, plain) = match movement {
            CustodyMove::CheckOut {
                reason,
                due_back,
                holder,
            } => {
                if status != IN_SAFE {
                    return Err(AppError::Conflict(format!(
                        "the item is {status}; only an item in the safe can be checked out"
                    )));
                }
                if due_back < today() {
                    return Err(AppError::Invalid("due_back: the date has passed".into()));
                }
                let holder = holder.or(by);
                item.status = Some(CHECKED_OUT.into());
                item.holder = holder;
                item.due_on = Some(due_back.as_string());
                (
                    "check_out",
                    AuditAction::CustodyCheckedOut,
                    MovementPlain {
                        action: "check_out".into(),
                        by,
                        holder,
                        reason: Some(reason),
                        due_back: Some(due_back),
                    },
                )
            }
            CustodyMove::CheckIn { note } => {
                if status != CHECKED_OUT {
                    return Err(AppError::Conflict(format!(
                        "the item is {status}; only a checked-out item can be checked in"
                    )));
                }
                item.status = Some(IN_SAFE.into());
                item.holder = None;
                item.due_on = None;
                (
                    "check_in",
                    AuditAction::CustodyCheckedIn,
                    MovementPlain {
                        action: "check_in".into(),
                        by,
                        holder: None,
                        reason: note,
                        due_back: None,
                    },
                )
            }
            CustodyMove::ReturnToClient { reason } => {
                if status == RETURNED {
                    return Err(AppError::Conflict(
                        "the item was returned to the client already".into(),
                    ));
                }
                item.status = Some(RETURNED.into());
                item.holder = None;
                item.due_on = None;
                (
                    "return_to_client",
                    AuditAction::CustodyCheckedOut,
                    MovementPlain {
                        action: "return_to_client".into(),
                        by,
                        holder: None,
                        reason: Some(reason),
                        due_back: None,
                    },
                )
            }
        };
        let mut movement_row = new_row(grant, MOVEMENT, client);
        movement_row.parent_id = Some(id);
        movement_row.label = action.into();
        movement_row.holder = plain.holder;
        let detail = match &plain.reason {
            Some(r) => format!("{action}: {}", r.as_str()),
            None => action.to_owned(),
        };
        movement_row.plain = to_json(&plain)?;
        let event = self
            .record_event(grant, meta, audit, KIND, id)
            .detail(detail.chars().take(500).collect::<String>());
        let version = current.row.version;
        self.store
            .record_write(
                grant.scope(),
                client,
                vec![
                    RecordOp::Update {
                        row: item,
                        expected_version: version,
                        indexes: None,
                    },
                    RecordOp::Insert {
                        row: movement_row,
                        indexes: Vec::new(),
                        blob: None,
                    },
                ],
                event,
            )
            .await?;
        self.custody_get(grant, client, id).await
    }

    async fn custody_get(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
    ) -> Result<CustodyItemView, AppError> {
        let hit = self.record_one(grant, KIND, client, id).await?;
        let movements = self
            .store
            .record_query(
                grant.scope(),
                RecordQuery {
                    parent: Some(id),
                    ..RecordQuery::of_client(MOVEMENT, client)
                },
                None,
            )
            .await?;
        self.custody_view(&hit, &movements, today())
    }

    pub async fn custody_list(
        &self,
        grant: &Grant,
        client: ClientId,
    ) -> Result<Vec<CustodyItemView>, AppError> {
        let (items, movements) = tokio::try_join!(
            self.store
                .record_query(grant.scope(), RecordQuery::of_client(KIND, client), None),
            self.store.record_query(
                grant.scope(),
                RecordQuery::of_client(MOVEMENT, client),
                None
            ),
        )?;
        let today = today();
        items
            .iter()
            .map(|i| self.custody_view(i, &movements, today))
            .collect()
    }

    /// Items checked out whose return date has passed, across the caller's clients.
    pub async fn custody_overdue(&self, grant: &Grant) -> Result<Vec<CustodyItemView>, AppError> {
        let today = today();
        let yesterday = today.checked_add_days(-1).unwrap_or(today);
        let q = RecordQuery {
            status_in: vec![CHECKED_OUT.into()],
            due_until: Some(yesterday.as_string()),
            limit: 1000,
            ..RecordQuery::new(KIND)
        };
        let items = self.store.record_query(grant.scope(), q, None).await?;
        items
            .iter()
            .map(|i| self.custody_view(i, &[], today))
            .collect()
    }
}
