//! Client (企业客户) use-cases: the encryption boundary, the scoped store calls and the audit
//! events meet here.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zf_audit::{AuditAction, AuditEvent, Outcome};
use zf_crypto::Sealed;
use zf_crypto::{Aad, DekRing};
use zf_domain::{
    ClientId, ClientPatch, ClientStatus, IdNumber, NewClient, Notes, TaxpayerType, UserId,
};
use zf_policy::{Field, Grant, Role, Visibility};
use zf_store::{ClientChange, ClientQuery, ClientRecord, ClientRow, ClientSort, SortKey};

use crate::{actor, now_ms, App, AppError, RequestMeta};

const TABLE: &str = "clients";
const ID_NUMBER: &str = "legal_rep_id_number";
const NOTES: &str = "notes";
const ALL_FIELDS: &[&str] = &["name", "uscc", "taxpayer_type", "legal_rep_name", ID_NUMBER];

/// How often an update without If-Match is applied again after a concurrent change.
const UNVERSIONED_RETRIES: u64 = 20;

/// A sensitive value as the caller may see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "visibility", content = "value", rename_all = "snake_case")]
pub enum SensitiveValue {
    /// The full value; returning it was audited.
    Visible(String),
    /// 脱敏: only the first and last characters, e.g. `110***********1234`.
    Masked(String),
    Hidden,
}

impl SensitiveValue {
    pub fn display(&self) -> &str {
        match self {
            SensitiveValue::Visible(v) | SensitiveValue::Masked(v) => v,
            SensitiveValue::Hidden => "",
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ClientView {
    #[schema(value_type = String, format = Uuid)]
    pub id: ClientId,
    pub name: String,
    pub uscc: String,
    pub taxpayer_type: TaxpayerType,
    pub legal_rep_name: String,
    pub legal_rep_id_number: SensitiveValue,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub assigned_accountant: Option<zf_domain::UserId>,
    pub status: ClientStatus,
    pub status_label: &'static str,
    pub team: Option<String>,
    pub tags: Vec<String>,
    /// Free-text notes; only in the view of one client, never in lists.
    pub notes: Option<String>,
    /// 注册资本 in fen.
    pub registered_capital: Option<i64>,
    pub tax_authority: Option<String>,
    /// Unix time in milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// Increases with every change; send it back in `If-Match` to update safely.
    pub version: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ClientPage {
    pub items: Vec<ClientView>,
    /// How many clients match the filters: counted on the first page and carried by the
    /// cursor to the pages after it, so it is the count as the listing began.
    pub total: u64,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
    pub limit: u32,
}

/// Filters, order and position of a client listing, as the caller asks for them.
#[derive(Clone, Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClientFilter {
    /// `lead`, `signed`, `in_service` or `churned`.
    pub status: Option<ClientStatus>,
    pub taxpayer_type: Option<TaxpayerType>,
    /// Only clients assigned to this user.
    #[param(value_type = Option<String>, format = Uuid)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub assigned: Option<UserId>,
    pub team: Option<String>,
    pub tag: Option<String>,
    /// Part of the name, or the start of the USCC.
    pub q: Option<String>,
    /// `name` (default), `created_at` or `updated_at`.
    pub sort: Option<String>,
    /// `asc` (default) or `desc`.
    pub order: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<u32>,
}

/// Reassigning a client (job transfer, workload): the accountant and team that serve it.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientAssignment {
    /// The accountant's username; null leaves the client unassigned.
    pub accountant: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
}

/// A cursor is the last row's sort value and id, opaque to callers.
/// A cursor also carries the listing's total, counted on its first page, so that paging on
/// does not count the whole firm again for every page (a count visits every matching client:
/// the one cost of a page that grows with the firm).
fn encode_cursor(key: &SortKey, id: ClientId, total: u64) -> String {
    use base64::Engine;
    let raw = match key {
        SortKey::Text(t) => format!("T{total},{id}{t}"),
        SortKey::Int(i) => format!("I{total},{id}{i}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The position after which the next page starts, and the total it carries (absent in cursors
/// handed out before totals were carried, which then count again).
fn decode_cursor(cursor: &str) -> Result<(SortKey, ClientId, Option<u64>), AppError> {
    use base64::Engine;
    let bad = || AppError::Invalid("cursor: not a cursor this server handed out".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (tag, rest) = raw.split_at_checked(1).ok_or_else(bad)?;
    let (total, rest) = match tag {
        "T" | "I" => {
            let (total, rest) = rest.split_once(',').ok_or_else(bad)?;
            (Some(total.parse::<u64>().map_err(|_| bad())?), rest)
        }
        _ => (None, rest),
    };
    let (id, value) = rest.split_at_checked(36).ok_or_else(bad)?;
    let id = ClientId::parse(id).map_err(|_| bad())?;
    let key = match tag {
        "t" | "T" => SortKey::Text(value.to_owned()),
        "i" | "I" => SortKey::Int(value.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    };
    Ok((key, id, total))
}

impl ClientFilter {
    /// The total the cursor carries from the listing's first page, if any.
    fn carried_total(&self) -> Result<Option<u64>, AppError> {
        Ok(match self.cursor.as_deref() {
            Some(c) => decode_cursor(c)?.2,
            None => None,
        })
    }

    fn query(&self) -> Result<ClientQuery, AppError> {
        let sort = match self.sort.as_deref() {
            None | Some("name") => ClientSort::Name,
            Some("created_at") => ClientSort::CreatedAt,
            Some("updated_at") => ClientSort::UpdatedAt,
            Some(other) => {
                return Err(AppError::Invalid(format!(
                    "sort: {other:?} is not one of name, created_at, updated_at"
                )))
            }
        };
        let descending = match self.order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(AppError::Invalid(format!(
                    "order: {other:?} is not asc or desc"
                )))
            }
        };
        let after = self.cursor.as_deref().map(decode_cursor).transpose()?;
        if let Some((key, _, _)) = &after {
            let fits = matches!(
                (sort, key),
                (ClientSort::Name, SortKey::Text(_))
                    | (
                        ClientSort::CreatedAt | ClientSort::UpdatedAt,
                        SortKey::Int(_)
                    )
            );
            if !fits {
                return Err(AppError::Invalid(
                    "cursor: it belongs to another sort order".into(),
                ));
            }
        }
        let text = |v: &Option<String>, field: &str| -> Result<Option<String>, AppError> {
            match v.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(t) if t.chars().count() > 100 || t.chars().any(char::is_control) => Err(
                    AppError::Invalid(format!("{field}: at most 100 characters of text")),
                ),
                Some(t) => Ok(Some(t.to_owned())),
            }
        };
        Ok(ClientQuery {
            status: self.status.map(|s| s.as_str().to_owned()),
            taxpayer_type: self.taxpayer_type.map(|t| t.as_str().to_owned()),
            assigned: self.assigned,
            team: text(&self.team, "team")?,
            tag: text(&self.tag, "tag")?,
            text: text(&self.q, "q")?,
            sort,
            descending,
            after: after.map(|(key, id, _)| (key, id)),
            limit: self.limit.unwrap_or(50).clamp(1, 200),
        })
    }
}

/// The body of an exact-match search on an encrypted field. A POST body rather than a query
/// string, so the ID number never lands in access logs or browser history.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdNumberQuery {
    pub legal_rep_id_number: IdNumber,
}

pub(crate) fn aad(id: ClientId) -> Aad {
    Aad::new(TABLE, id.to_string(), ID_NUMBER)
}

pub(crate) fn notes_aad(id: ClientId) -> Aad {
    Aad::new(TABLE, id.to_string(), NOTES)
}

impl App {
    fn event(&self, grant: &Grant, meta: &RequestMeta, action: AuditAction) -> AuditEvent {
        AuditEvent::new(now_ms(), actor(grant, meta), action, Outcome::Success)
            .request(meta.request_id.clone())
    }

    pub(crate) fn open_id_number(
        &self,
        record: &ClientRecord,
        dek: &DekRing,
    ) -> Result<IdNumber, AppError> {
        self.open_id_number_sealed(record.row.id, &record.row.legal_rep_id_number, dek)
    }

    /// A client's sealed ID number, opened and parsed.
    pub(crate) fn open_id_number_sealed(
        &self,
        id: ClientId,
        sealed: &zf_crypto::Sealed,
        dek: &DekRing,
    ) -> Result<IdNumber, AppError> {
        let plain = zeroize::Zeroizing::new(dek.open(sealed, &aad(id))?);
        let text = std::str::from_utf8(&plain)
            .map_err(|_| AppError::Internal("decrypted ID number is not UTF-8".into()))?;
        IdNumber::parse(text)
            .map_err(|_| AppError::Internal("decrypted ID number does not parse".into()))
    }

    /// Builds the view of a record at the given visibility, decrypting only when needed;
    /// `dek` saves the unwrap when the caller already holds the client's key. Notes are opened
    /// only for the view of one client (`detail`).
    fn view(
        &self,
        record: &ClientRecord,
        visibility: Visibility,
        dek: Option<&DekRing>,
        detail: bool,
    ) -> Result<ClientView, AppError> {
        let needs_key = visibility != Visibility::Hidden || (detail && record.row.notes.is_some());
        let unwrapped;
        let dek = match (needs_key, dek) {
            (false, _) => None,
            (true, Some(d)) => Some(d),
            (true, None) => {
                unwrapped = self.keys.client_key(record.row.id, &record.key)?;
                Some(&unwrapped)
            }
        };
        let id_number = match (visibility, dek) {
            (Visibility::Hidden, _) | (_, None) => SensitiveValue::Hidden,
            (_, Some(dek)) => {
                let id = self.open_id_number(record, dek)?;
                if visibility == Visibility::Visible {
                    SensitiveValue::Visible(id.as_str().to_owned())
                } else {
                    SensitiveValue::Masked(id.masked())
                }
            }
        };
        let notes = match (&record.row.notes, dek) {
            (Some(sealed), Some(dek)) if detail => {
                Some(self.open_notes(record.row.id, sealed, dek)?)
            }
            _ => None,
        };
        let row = &record.row;
        Ok(ClientView {
            id: row.id,
            name: row.name.as_str().to_owned(),
            uscc: row.uscc.as_str().to_owned(),
            taxpayer_type: row.taxpayer_type,
            legal_rep_name: row.legal_rep_name.as_str().to_owned(),
            legal_rep_id_number: id_number,
            assigned_accountant: row.assigned_accountant,
            status: row.status,
            status_label: row.status.label_zh(),
            team: row.team.as_ref().map(|t| t.as_str().to_owned()),
            tags: row.tags.iter().map(|t| t.as_str().to_owned()).collect(),
            notes,
            registered_capital: row.registered_capital.map(|f| f.as_fen()),
            tax_authority: row.tax_authority.as_ref().map(|t| t.as_str().to_owned()),
            created_at: row.created_at_ms,
            updated_at: row.updated_at_ms,
            version: row.version,
        })
    }

    pub(crate) fn open_notes(
        &self,
        id: ClientId,
        sealed: &Sealed,
        dek: &DekRing,
    ) -> Result<String, AppError> {
        let plain = zeroize::Zeroizing::new(dek.open(sealed, &notes_aad(id))?);
        String::from_utf8(plain.to_vec())
            .map_err(|_| AppError::Internal("decrypted notes are not UTF-8".into()))
    }

    fn seal_notes(&self, id: ClientId, notes: &Notes, dek: &DekRing) -> Sealed {
        dek.seal(notes.as_str().as_bytes(), &notes_aad(id))
    }

    /// Lists never show a sensitive field in full, whatever the role.
    fn list_visibility(grant: &Grant) -> Visibility {
        match grant.visibility(Field::LegalRepIdNumber) {
            Visibility::Visible | Visibility::Masked => Visibility::Masked,
            Visibility::Hidden => Visibility::Hidden,
        }
    }

    /// A new client's row, sealed under a fresh data key. An accountant's own clients are
    /// theirs; supervisors assign clients explicitly (`assigned` overrides).
    pub(crate) fn client_row(
        &self,
        grant: &Grant,
        new: NewClient,
        assigned: Option<UserId>,
    ) -> Result<(ClientRecord, DekRing), AppError> {
        let id = ClientId::new_random();
        let (dek, wrapped) = self.keys.new_client_key(id)?;
        let sealed = dek.seal(new.legal_rep_id_number.as_str().as_bytes(), &aad(id));
        let index = self.keys.id_number_index(&new.legal_rep_id_number);
        // A client created by someone who reaches only their assigned clients is assigned to
        // them, or they could not see what they just created.
        let assigned = assigned.or_else(|| {
            grant
                .principal()
                .filter(|p| p.scope_rule() == zf_policy::ScopeRule::Assigned)
                .map(|p| p.user_id)
        });
        let now = now_ms();
        let notes = new.notes.as_ref().map(|n| self.seal_notes(id, n, &dek));
        let row = ClientRow {
            id,
            name: new.name,
            uscc: new.uscc,
            taxpayer_type: new.taxpayer_type,
            legal_rep_name: new.legal_rep_name,
            legal_rep_id_number: sealed,
            legal_rep_id_index: index,
            assigned_accountant: assigned,
            status: new.status.unwrap_or(ClientStatus::InService),
            team: new.team,
            tags: new.tags.unwrap_or_default(),
            notes,
            registered_capital: new.registered_capital,
            tax_authority: new.tax_authority,
            created_at_ms: now,
            updated_at_ms: now,
            version: 1,
        };
        Ok((
            ClientRecord {
                row,
                key: zf_store::KeySlots::first(wrapped),
            },
            dek,
        ))
    }

    /// The view of a client the caller just wrote, at the visibility their role allows.
    pub(crate) fn client_view_at(
        &self,
        grant: &Grant,
        record: &ClientRecord,
        dek: &DekRing,
    ) -> Result<ClientView, AppError> {
        self.view(
            record,
            grant.visibility(Field::LegalRepIdNumber),
            Some(dek),
            true,
        )
    }

    pub async fn client_create(
        &self,
        grant: &Grant,
        new: NewClient,
        meta: &RequestMeta,
    ) -> Result<ClientView, AppError> {
        let (record, dek) = self.client_row(grant, new, None)?;
        let event = self
            .event(grant, meta, AuditAction::ClientCreated)
            .on(TABLE, record.row.id)
            .fields(ALL_FIELDS);
        self.store
            .client_insert(
                record.row.clone(),
                record.key.current.wrapped.clone(),
                event,
            )
            .await?;
        // The creator typed the number in; echo it only at the visibility their role allows.
        self.client_view_at(grant, &record, &dek)
    }

    /// One client in full, at the caller's visibility. Returning a sensitive field in the
    /// clear is audited, and the event is durable before the value leaves.
    pub async fn client_get(
        &self,
        grant: &Grant,
        id: ClientId,
        meta: &RequestMeta,
    ) -> Result<ClientView, AppError> {
        let visibility = grant.visibility(Field::LegalRepIdNumber);
        let record = if visibility == Visibility::Visible {
            let event = self
                .event(grant, meta, AuditAction::ClientSensitiveRead)
                .on(TABLE, id)
                .fields(&[ID_NUMBER, NOTES]);
            self.store
                .client_get_audited(grant.scope(), id, event)
                .await?
        } else {
            self.store.client_get(grant.scope(), id).await?
        };
        let record = record.ok_or(AppError::NotFound)?;
        self.view(&record, visibility, None, true)
    }

    /// A filtered, sorted page of the clients in scope, sensitive fields masked. Pages follow
    /// one another by cursor, so concurrent writes never repeat or skip a row.
    pub async fn client_list(
        &self,
        grant: &Grant,
        filter: &ClientFilter,
    ) -> Result<ClientPage, AppError> {
        let query = filter.query()?;
        let limit = query.limit;
        let scope = grant.scope();
        let carried = filter.carried_total()?;
        let (records, total) = match carried {
            Some(total) => (self.store.client_query(scope, query.clone()).await?, total),
            None => tokio::try_join!(
                self.store.client_query(scope, query.clone()),
                self.store.client_query_count(scope, query.clone())
            )?,
        };
        let visibility = Self::list_visibility(grant);
        let items = records
            .iter()
            .map(|r| self.view(r, visibility, None, false))
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = match records.last() {
            Some(last) if records.len() == limit as usize => {
                let key = match query.sort {
                    ClientSort::Name => SortKey::Text(last.row.name.as_str().to_owned()),
                    ClientSort::CreatedAt => SortKey::Int(last.row.created_at_ms),
                    ClientSort::UpdatedAt => SortKey::Int(last.row.updated_at_ms),
                };
                Some(encode_cursor(&key, last.row.id, total))
            }
            _ => None,
        };
        Ok(ClientPage {
            items,
            total,
            next_cursor,
            limit,
        })
    }

    /// Exact-match search on the legal representative's ID number through its blind index.
    pub async fn client_search_id_number(
        &self,
        grant: &Grant,
        query: IdNumberQuery,
        meta: &RequestMeta,
    ) -> Result<Vec<ClientView>, AppError> {
        let tokens = self.keys.id_number_candidates(&query.legal_rep_id_number);
        let event = self
            .event(grant, meta, AuditAction::ClientSearched)
            .fields(&[ID_NUMBER]);
        let records = self
            .store
            .client_find_by_id_number(grant.scope(), &tokens, event)
            .await?;
        let visibility = Self::list_visibility(grant);
        records
            .iter()
            .map(|r| self.view(r, visibility, None, false))
            .collect()
    }

    pub async fn client_update(
        &self,
        grant: &Grant,
        id: ClientId,
        patch: ClientPatch,
        expected_version: Option<i64>,
        meta: &RequestMeta,
    ) -> Result<ClientView, AppError> {
        if patch.is_empty() {
            return Err(AppError::Invalid("the update changes no field".into()));
        }
        // Without If-Match the caller asked for no version check: a change that lands between
        // this read and the write is not a conflict of theirs, so the patch is checked and
        // applied again on the fresh record (up to UNVERSIONED_RETRIES times, then the
        // conflict is reported).
        let mut retries = 0;
        loop {
            let current = self
                .store
                .client_get(grant.scope(), id)
                .await?
                .ok_or(AppError::NotFound)?;
            let patch = patch.clone();
            let written = async {
                if let Some(next) = patch.status {
                    let now = current.row.status;
                    if next != now && !now.can_move_to(next) {
                        return Err(AppError::Invalid(format!(
                            "status: a client cannot move from {} to {}",
                            now.as_str(),
                            next.as_str()
                        )));
                    }
                }
                let mut fields = Vec::new();
                let needs_key = patch.legal_rep_id_number.is_some() || patch.notes.is_some();
                let dek = if needs_key {
                    Some(self.keys.client_key(id, &current.key)?)
                } else {
                    None
                };
                let id_number = match (&patch.legal_rep_id_number, &dek) {
                    (Some(new), Some(dek)) => {
                        fields.push(ID_NUMBER);
                        Some((
                            dek.seal(new.as_str().as_bytes(), &aad(id)),
                            self.keys.id_number_index(new),
                        ))
                    }
                    _ => None,
                };
                let notes = match (&patch.notes, &dek) {
                    (Some(n), Some(dek)) => Some(Some(self.seal_notes(id, n, dek))),
                    _ => None,
                };
                for (name, present) in [
                    ("name", patch.name.is_some()),
                    ("uscc", patch.uscc.is_some()),
                    ("taxpayer_type", patch.taxpayer_type.is_some()),
                    ("legal_rep_name", patch.legal_rep_name.is_some()),
                    ("status", patch.status.is_some()),
                    ("tags", patch.tags.is_some()),
                    (NOTES, patch.notes.is_some()),
                    ("registered_capital", patch.registered_capital.is_some()),
                    ("tax_authority", patch.tax_authority.is_some()),
                ] {
                    if present {
                        fields.push(name);
                    }
                }
                let change = ClientChange {
                    name: patch.name,
                    uscc: patch.uscc,
                    taxpayer_type: patch.taxpayer_type,
                    legal_rep_name: patch.legal_rep_name,
                    legal_rep_id_number: id_number,
                    status: patch.status,
                    tags: patch.tags,
                    team: None,
                    notes,
                    registered_capital: patch.registered_capital.map(Some),
                    tax_authority: patch.tax_authority.map(Some),
                    assigned_accountant: None,
                    updated_at_ms: now_ms(),
                };
                let event = self
                    .event(grant, meta, AuditAction::ClientUpdated)
                    .on(TABLE, id)
                    .fields(&fields);
                let version = expected_version.unwrap_or(current.row.version);
                Ok(self
                    .store
                    .client_update(grant.scope(), id, version, change, event)
                    .await)
            }
            .await?;
            match written {
                Err(zf_store::StoreError::VersionConflict)
                    if expected_version.is_none() && retries < UNVERSIONED_RETRIES =>
                {
                    // Saves of one record at the same moment win one per round; a little
                    // jitter keeps the losers from meeting again in the next.
                    retries += 1;
                    let pause = rand::random::<u64>() % (2 * retries);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                other => break other?,
            }
        }
        let updated = self
            .store
            .client_get(grant.scope(), id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.view(&updated, Self::list_visibility(grant), None, true)
    }

    /// Gives an auditor an engagement on a client (they then read its financial records), or
    /// ends it. Only users holding the auditor role can be engaged.
    pub async fn client_engagement(
        &self,
        grant: &Grant,
        id: ClientId,
        auditor: &str,
        engaged: bool,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let username = zf_domain::Username::parse(auditor)
            .map_err(|e| AppError::Invalid(format!("auditor: {e}")))?;
        let user = self
            .store
            .user_by_username(&username)
            .await?
            .filter(|u| !u.disabled && u.scope_rule() == zf_policy::ScopeRule::Engagements)
            .ok_or_else(|| {
                AppError::Invalid(format!("auditor: {auditor:?} is not an active auditor"))
            })?;
        let by = grant
            .principal()
            .map_or_else(|| "unknown".to_owned(), |p| p.username.as_str().to_owned());
        let event = self
            .event(grant, meta, AuditAction::EngagementChanged)
            .on(TABLE, id)
            .detail(format!(
                "auditor {} {}",
                username.as_str(),
                if engaged {
                    "engaged"
                } else {
                    "engagement ended"
                }
            ));
        self.store
            .client_engagement(grant.scope(), id, user.id, engaged, &by, now_ms(), event)
            .await?;
        Ok(())
    }

    /// The name of a client in scope, for page titles; not a sensitive read.
    pub async fn client_name(&self, grant: &Grant, id: ClientId) -> Result<String, AppError> {
        Ok(self
            .store
            .client_get(grant.scope(), id)
            .await?
            .ok_or(AppError::NotFound)?
            .row
            .name
            .as_str()
            .to_owned())
    }

    /// Assigns a client to an accountant (who must hold the accountant role) and a team.
    pub async fn client_assign(
        &self,
        grant: &Grant,
        id: ClientId,
        assignment: ClientAssignment,
        meta: &RequestMeta,
    ) -> Result<ClientView, AppError> {
        let accountant = match assignment.accountant.as_deref() {
            None => None,
            Some(name) => Some(self.assignee(name).await?.id),
        };
        let team = match assignment.team.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) => Some(
                zf_domain::ShortText::parse(t)
                    .map_err(|e| AppError::Invalid(format!("team: {e}")))?,
            ),
        };
        let current = self
            .store
            .client_get(grant.scope(), id)
            .await?
            .ok_or(AppError::NotFound)?;
        let change = ClientChange {
            assigned_accountant: Some(accountant),
            team: Some(team),
            updated_at_ms: now_ms(),
            ..ClientChange::default()
        };
        let event = self
            .event(grant, meta, AuditAction::ClientAssigned)
            .on(TABLE, id)
            .fields(&["assigned_accountant", "team"])
            .detail(format!(
                "accountant {}",
                assignment.accountant.as_deref().unwrap_or("(none)")
            ));
        self.store
            .client_update(grant.scope(), id, current.row.version, change, event)
            .await?;
        let updated = self
            .store
            .client_get(grant.scope(), id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.view(&updated, Self::list_visibility(grant), None, false)
    }

    /// The active accountant or supervisor (or holder of a custom role built on one) that
    /// clients may be assigned to.
    pub(crate) async fn assignee(&self, name: &str) -> Result<zf_store::UserRow, AppError> {
        let username = zf_domain::Username::parse(name)
            .map_err(|e| AppError::Invalid(format!("accountant: {e}")))?;
        let user = self
            .store
            .user_by_username(&username)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(|| AppError::Invalid(format!("accountant: no active user {name:?}")))?;
        if user.role != Role::Accountant && user.role != Role::Supervisor {
            return Err(AppError::Invalid(format!(
                "accountant: {name:?} is a {}, not an accountant or supervisor",
                user.role.label_zh()
            )));
        }
        Ok(user)
    }

    /// Shows one masked field in full to a role that may reveal it, for a stated reason; the
    /// reveal and its reason are audited before the value leaves.
    pub async fn client_reveal(
        &self,
        grant: &Grant,
        id: ClientId,
        field: &str,
        reason: &str,
        meta: &RequestMeta,
    ) -> Result<SensitiveValue, AppError> {
        if field != ID_NUMBER {
            return Err(AppError::Invalid(format!(
                "{field:?} is not a field that can be revealed; try {ID_NUMBER:?}"
            )));
        }
        let reason = reason.trim();
        if reason.chars().count() < 4 || reason.chars().count() > 200 {
            return Err(AppError::Invalid(
                "state why you need the value (4 to 200 characters)".into(),
            ));
        }
        if grant.visibility(Field::LegalRepIdNumber) == Visibility::Hidden {
            return Err(AppError::Denied(zf_policy::Denied::Forbidden {
                role: grant
                    .principal()
                    .map_or_else(String::new, |p| p.role_name().to_owned()),
                operation: "client_reveal",
            }));
        }
        let reason: String = reason.chars().filter(|c| !c.is_control()).collect();
        let event = self
            .event(grant, meta, AuditAction::FieldRevealed)
            .on(TABLE, id)
            .fields(&[ID_NUMBER])
            .detail(reason);
        let record = self
            .store
            .client_get_audited(grant.scope(), id, event)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok(self
            .view(&record, Visibility::Visible, None, false)?
            .legal_rep_id_number)
    }

    /// Records a refused request. Called by the edge for every policy denial.
    pub async fn audit_denied(
        &self,
        principal: Option<&zf_policy::Principal>,
        operation: zf_policy::Operation,
        reason: &str,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let actor = zf_audit::Actor {
            user_id: principal.map(|p| p.user_id),
            name: principal.map_or_else(
                || "anonymous".to_owned(),
                |p| p.username.as_str().to_owned(),
            ),
            session_ref: meta.session_ref.clone(),
            source: meta.source.clone(),
            device: meta.device.clone(),
        };
        let event = AuditEvent::new(now_ms(), actor, AuditAction::AccessDenied, Outcome::Denied)
            .request(meta.request_id.clone())
            .detail(format!("{}: {reason}", operation.as_str()));
        self.store.audit_append(event).await?;
        Ok(())
    }
}
