//! Client (企业客户) use-cases: the encryption boundary, the scoped store calls and the audit
//! events meet here.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zf_audit::{AuditAction, AuditEvent, Outcome};
use zf_crypto::{Aad, Dek};
use zf_domain::{ClientId, ClientPatch, IdNumber, NewClient, TaxpayerType};
use zf_policy::{Field, Grant, Role, Visibility};
use zf_store::{ClientChange, ClientRecord, ClientRow, Page};

use crate::{actor, now_ms, App, AppError, RequestMeta};

const TABLE: &str = "clients";
const ID_NUMBER: &str = "legal_rep_id_number";
const ALL_FIELDS: &[&str] = &["name", "uscc", "taxpayer_type", "legal_rep_name", ID_NUMBER];

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
    /// Unix time in milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// Increases with every change; send it back in `If-Match` to update safely.
    pub version: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ClientPage {
    pub items: Vec<ClientView>,
    pub total: u64,
    pub offset: u32,
    pub limit: u32,
}

/// The body of an exact-match search on an encrypted field. A POST body rather than a query
/// string, so the ID number never lands in access logs or browser history.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdNumberQuery {
    pub legal_rep_id_number: IdNumber,
}

fn aad(id: ClientId) -> Aad {
    Aad::new(TABLE, id.to_string(), ID_NUMBER)
}

impl App {
    fn event(&self, grant: &Grant, meta: &RequestMeta, action: AuditAction) -> AuditEvent {
        AuditEvent::new(now_ms(), actor(grant, meta), action, Outcome::Success)
            .request(meta.request_id.clone())
    }

    fn open_id_number(&self, record: &ClientRecord, dek: &Dek) -> Result<IdNumber, AppError> {
        let plain = dek.open(&record.row.legal_rep_id_number, &aad(record.row.id))?;
        let text = std::str::from_utf8(&plain)
            .map_err(|_| AppError::Internal("decrypted ID number is not UTF-8".into()))?;
        IdNumber::parse(text)
            .map_err(|_| AppError::Internal("decrypted ID number does not parse".into()))
    }

    /// Builds the view of a record at the given visibility, decrypting only when needed;
    /// `dek` saves the unwrap when the caller already holds the client's key.
    fn view(
        &self,
        record: &ClientRecord,
        visibility: Visibility,
        dek: Option<&Dek>,
    ) -> Result<ClientView, AppError> {
        let id_number = match visibility {
            Visibility::Hidden => SensitiveValue::Hidden,
            Visibility::Masked | Visibility::Visible => {
                let unwrapped;
                let dek = match dek {
                    Some(d) => d,
                    None => {
                        unwrapped = self.keys.client_key(record.row.id, &record.key)?;
                        &unwrapped
                    }
                };
                let id = self.open_id_number(record, dek)?;
                if visibility == Visibility::Visible {
                    SensitiveValue::Visible(id.as_str().to_owned())
                } else {
                    SensitiveValue::Masked(id.masked())
                }
            }
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
            created_at: row.created_at_ms,
            updated_at: row.updated_at_ms,
            version: row.version,
        })
    }

    /// Lists never show a sensitive field in full, whatever the role.
    fn list_visibility(grant: &Grant) -> Visibility {
        match grant.visibility(Field::LegalRepIdNumber) {
            Visibility::Visible | Visibility::Masked => Visibility::Masked,
            Visibility::Hidden => Visibility::Hidden,
        }
    }

    pub async fn client_create(
        &self,
        grant: &Grant,
        new: NewClient,
        meta: &RequestMeta,
    ) -> Result<ClientView, AppError> {
        let id = ClientId::new_random();
        let (dek, wrapped) = self.keys.new_client_key(id);
        let sealed = dek.seal(
            self.keys.data_key_version(),
            new.legal_rep_id_number.as_str().as_bytes(),
            &aad(id),
        );
        let index = self.keys.id_number_index(&new.legal_rep_id_number);
        // An accountant's own clients are theirs; supervisors assign clients explicitly.
        let assigned = grant
            .principal()
            .filter(|p| p.role == Role::Accountant)
            .map(|p| p.user_id);
        let now = now_ms();
        let row = ClientRow {
            id,
            name: new.name,
            uscc: new.uscc,
            taxpayer_type: new.taxpayer_type,
            legal_rep_name: new.legal_rep_name,
            legal_rep_id_number: sealed,
            legal_rep_id_index: index,
            assigned_accountant: assigned,
            created_at_ms: now,
            updated_at_ms: now,
            version: 1,
        };
        let event = self
            .event(grant, meta, AuditAction::ClientCreated)
            .on(TABLE, id)
            .fields(ALL_FIELDS);
        let record = ClientRecord { row, key: wrapped };
        self.store
            .client_insert(record.row.clone(), record.key.clone(), event)
            .await?;
        // The creator typed the number in; echo it only at the visibility their role allows.
        let view = self.view(
            &record,
            grant.visibility(Field::LegalRepIdNumber),
            Some(&dek),
        )?;
        Ok(view)
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
                .fields(&[ID_NUMBER]);
            self.store
                .client_get_audited(grant.scope(), id, event)
                .await?
        } else {
            self.store.client_get(grant.scope(), id).await?
        };
        let record = record.ok_or(AppError::NotFound)?;
        self.view(&record, visibility, None)
    }

    pub async fn client_list(
        &self,
        grant: &Grant,
        offset: u32,
        limit: u32,
    ) -> Result<ClientPage, AppError> {
        let limit = limit.clamp(1, 200);
        let scope = grant.scope();
        let (records, total) = tokio::try_join!(
            self.store.client_list(scope, Page { offset, limit }),
            self.store.client_count(scope)
        )?;
        let visibility = Self::list_visibility(grant);
        let items = records
            .iter()
            .map(|r| self.view(r, visibility, None))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClientPage {
            items,
            total,
            offset,
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
        let index = self.keys.id_number_index(&query.legal_rep_id_number);
        let event = self
            .event(grant, meta, AuditAction::ClientSearched)
            .fields(&[ID_NUMBER]);
        let records = self
            .store
            .client_find_by_id_number(grant.scope(), &index, event)
            .await?;
        let visibility = Self::list_visibility(grant);
        records
            .iter()
            .map(|r| self.view(r, visibility, None))
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
        let current = self
            .store
            .client_get(grant.scope(), id)
            .await?
            .ok_or(AppError::NotFound)?;
        let mut fields = Vec::new();
        let id_number = match &patch.legal_rep_id_number {
            Some(new) => {
                let dek = self.keys.client_key(id, &current.key)?;
                fields.push(ID_NUMBER);
                Some((
                    dek.seal(
                        self.keys.data_key_version(),
                        new.as_str().as_bytes(),
                        &aad(id),
                    ),
                    self.keys.id_number_index(new),
                ))
            }
            None => None,
        };
        for (name, present) in [
            ("name", patch.name.is_some()),
            ("uscc", patch.uscc.is_some()),
            ("taxpayer_type", patch.taxpayer_type.is_some()),
            ("legal_rep_name", patch.legal_rep_name.is_some()),
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
            updated_at_ms: now_ms(),
        };
        let event = self
            .event(grant, meta, AuditAction::ClientUpdated)
            .on(TABLE, id)
            .fields(&fields);
        let version = expected_version.unwrap_or(current.row.version);
        self.store
            .client_update(grant.scope(), id, version, change, event)
            .await?;
        let updated = self
            .store
            .client_get(grant.scope(), id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.view(&updated, Self::list_visibility(grant), None)
    }

    /// Deletes a client. Its data key is destroyed in the same transaction (crypto-shredding),
    /// so any copy of its ciphertext, in a backup or a stolen disk, can no longer be opened.
    pub async fn client_delete(
        &self,
        grant: &Grant,
        id: ClientId,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let event = self
            .event(grant, meta, AuditAction::ClientDeleted)
            .on(TABLE, id);
        self.store.client_delete(grant.scope(), id, event).await?;
        Ok(())
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
                role: grant.principal().map_or(Role::Sales, |p| p.role),
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
            .view(&record, Visibility::Visible, None)?
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
