//! Contacts of a client (联系人): the people the firm calls, with their mobile, e-mail, WeChat
//! and ID number sealed under the client's key and searchable by blind index.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zf_audit::AuditAction;
use zf_domain::{ClientId, Email, IdNumber, Mobile, PersonName, Position, RecordId, WeChatId};
use zf_policy::{Field, Grant, Visibility};
use zf_store::{IndexEntry, IndexMatch, RecordHit, RecordKind, RecordOp, RecordQuery, RecordWrite};

use super::{at_most_masked, insert_write, new_row, shown, to_json, KeyCache, RecordMeta};
use crate::{App, AppError, RequestMeta, SensitiveValue};

const KIND: RecordKind = RecordKind::Contact;
const MOBILE_INDEX: &str = "contact.mobile";
const ID_NUMBER_INDEX: &str = "contact.id_number";
const SENSITIVE: &[&str] = &["mobile", "email", "wechat", "id_number"];

/// A contact as entered. Absent optional fields are simply unknown.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    pub name: PersonName,
    #[serde(default)]
    pub position: Option<Position>,
    #[serde(default)]
    pub mobile: Option<Mobile>,
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub wechat: Option<WeChatId>,
    #[serde(default)]
    pub id_number: Option<IdNumber>,
    /// The client's main contact.
    #[serde(default)]
    pub primary: bool,
    /// The version being replaced; required by updates, ignored by creation.
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct Plain {
    position: Option<Position>,
    primary: bool,
}

#[derive(Serialize, Deserialize)]
struct Secret {
    mobile: Option<Mobile>,
    email: Option<Email>,
    wechat: Option<WeChatId>,
    id_number: Option<IdNumber>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ContactView {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub name: String,
    pub position: Option<String>,
    pub primary: bool,
    pub mobile: Option<SensitiveValue>,
    pub email: Option<SensitiveValue>,
    pub wechat: Option<SensitiveValue>,
    pub id_number: Option<SensitiveValue>,
}

/// An exact search by mobile number or ID number, sent in a body so it never lands in logs.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactQuery {
    #[serde(default)]
    pub mobile: Option<Mobile>,
    #[serde(default)]
    pub id_number: Option<IdNumber>,
}

impl App {
    /// The search tokens of a contact from its opened payload, as a write computes them: a
    /// re-index computes them again under a new blind-index key.
    pub(crate) fn contact_tokens(&self, payload: &[u8]) -> Result<Vec<IndexEntry>, AppError> {
        let secret: Secret = serde_json::from_slice(payload)
            .map_err(|e| AppError::Internal(format!("a sealed contact does not parse: {e}")))?;
        Ok(self.contact_indexes(&secret))
    }

    fn contact_indexes(&self, secret: &Secret) -> Vec<IndexEntry> {
        let mut out = Vec::new();
        if let Some(m) = &secret.mobile {
            out.push(IndexEntry {
                field: MOBILE_INDEX,
                token: self.keys.index(MOBILE_INDEX, m.as_str()),
            });
        }
        if let Some(id) = &secret.id_number {
            out.push(IndexEntry {
                field: ID_NUMBER_INDEX,
                token: self.keys.index(ID_NUMBER_INDEX, id.as_str()),
            });
        }
        out
    }

    fn contact_view(
        &self,
        hit: &RecordHit,
        keys: &mut KeyCache<'_>,
        grant: &Grant,
        list: bool,
    ) -> Result<ContactView, AppError> {
        let plain: Plain = self.plain_json(&hit.row)?;
        let vis = |field| {
            let v = grant.visibility(field);
            if list {
                at_most_masked(v)
            } else {
                v
            }
        };
        let (mobile_vis, id_vis) = (vis(Field::ContactMobile), vis(Field::ContactIdNumber));
        let secret: Option<Secret> =
            if mobile_vis == Visibility::Hidden && id_vis == Visibility::Hidden {
                None
            } else {
                let dek = keys.get(hit.row.client_id, &hit.key)?;
                Some(self.open_json(dek, &hit.row)?)
            };
        let pick = |f: &dyn Fn(&Secret) -> Option<SensitiveValue>| secret.as_ref().and_then(f);
        Ok(ContactView {
            meta: RecordMeta::of(hit),
            name: hit.row.label.clone(),
            position: plain.position.map(|p| p.as_str().to_owned()),
            primary: plain.primary,
            mobile: pick(&|s| {
                s.mobile
                    .as_ref()
                    .map(|m| shown(mobile_vis, m.as_str(), || m.masked()))
            }),
            email: pick(&|s| {
                s.email
                    .as_ref()
                    .map(|e| shown(mobile_vis, e.as_str(), || e.masked()))
            }),
            wechat: pick(&|s| {
                s.wechat
                    .as_ref()
                    .map(|w| shown(mobile_vis, w.as_str(), || mask_middle(w.as_str())))
            }),
            id_number: pick(&|s| {
                s.id_number
                    .as_ref()
                    .map(|i| shown(id_vis, i.as_str(), || i.masked()))
            }),
        })
    }

    fn contact_row(
        &self,
        grant: &Grant,
        client: ClientId,
        id: Option<RecordId>,
        dek: &zf_crypto::DekRing,
        input: ContactInput,
    ) -> Result<(zf_store::RecordRow, Vec<IndexEntry>), AppError> {
        let mut row = new_row(grant, KIND, client);
        if let Some(id) = id {
            row.id = id;
        }
        row.label = input.name.as_str().to_owned();
        row.plain = to_json(&Plain {
            position: input.position,
            primary: input.primary,
        })?;
        let secret = Secret {
            mobile: input.mobile,
            email: input.email,
            wechat: input.wechat,
            id_number: input.id_number,
        };
        row.sealed = Some(self.seal_json(dek, KIND, row.id, &secret)?);
        Ok((row, self.contact_indexes(&secret)))
    }

    /// A new contact, sealed under `dek`, with its audit event; shared by `contact_create` and
    /// the batched creation.
    pub(crate) fn contact_insert(
        &self,
        grant: &Grant,
        client: ClientId,
        dek: &zf_crypto::DekRing,
        input: ContactInput,
        meta: &RequestMeta,
    ) -> Result<(RecordId, RecordWrite), AppError> {
        let (row, indexes) = self.contact_row(grant, client, None, dek, input)?;
        let id = row.id;
        let event = self
            .record_event(grant, meta, AuditAction::RecordCreated, KIND, id)
            .fields(SENSITIVE);
        Ok((id, insert_write(grant, row, indexes, event)))
    }

    pub async fn contact_create(
        &self,
        grant: &Grant,
        client: ClientId,
        input: ContactInput,
        meta: &RequestMeta,
    ) -> Result<ContactView, AppError> {
        let (_, dek) = self.scoped_client(grant, client).await?;
        let (id, write) = self.contact_insert(grant, client, &dek, input, meta)?;
        self.record_write_one(write).await?;
        self.contact_get(grant, client, id, meta).await
    }

    pub async fn contact_update(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
        input: ContactInput,
        meta: &RequestMeta,
    ) -> Result<ContactView, AppError> {
        let (_, dek) = self.scoped_client(grant, client).await?;
        let current = self.record_one(grant, KIND, client, id).await?;
        let version = input.version.unwrap_or(current.row.version);
        let (mut row, indexes) = self.contact_row(grant, client, Some(id), &dek, input)?;
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
                    indexes: Some(indexes),
                }],
                event,
            )
            .await?;
        self.contact_get(grant, client, id, meta).await
    }

    pub async fn contact_delete(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        self.record_delete(grant, KIND, client, id, meta).await
    }

    async fn contact_get(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
        meta: &RequestMeta,
    ) -> Result<ContactView, AppError> {
        let q = RecordQuery {
            id: Some(id),
            ..RecordQuery::of_client(KIND, client)
        };
        let hits = self.contacts_read(grant, q, meta).await?;
        let mut keys = KeyCache::new(self);
        let hit = hits.first().ok_or(AppError::NotFound)?;
        self.contact_view(hit, &mut keys, grant, false)
    }

    /// Reads contacts, auditing the read when the caller's role sees a field in the clear.
    async fn contacts_read(
        &self,
        grant: &Grant,
        q: RecordQuery,
        meta: &RequestMeta,
    ) -> Result<Vec<RecordHit>, AppError> {
        let clear = grant.visibility(Field::ContactMobile) == Visibility::Visible
            || grant.visibility(Field::ContactIdNumber) == Visibility::Visible;
        let event = clear.then(|| {
            let on = q.id.map_or_else(
                || q.client.map(|c| c.to_string()).unwrap_or_default(),
                |i| i.to_string(),
            );
            self.record_event(grant, meta, AuditAction::RecordSensitiveRead, KIND, on)
                .fields(SENSITIVE)
        });
        Ok(self.store.record_query(grant.scope(), q, event).await?)
    }

    /// Every contact of a client, at the caller's visibility.
    pub async fn contact_list(
        &self,
        grant: &Grant,
        client: ClientId,
        meta: &RequestMeta,
    ) -> Result<Vec<ContactView>, AppError> {
        let hits = self
            .contacts_read(grant, RecordQuery::of_client(KIND, client), meta)
            .await?;
        let mut keys = KeyCache::new(self);
        hits.iter()
            .map(|h| self.contact_view(h, &mut keys, grant, false))
            .collect()
    }

    /// Contacts in scope with this mobile or ID number, found through blind indexes; masked.
    pub async fn contact_search(
        &self,
        grant: &Grant,
        query: ContactQuery,
        meta: &RequestMeta,
    ) -> Result<Vec<ContactView>, AppError> {
        let index = match (&query.mobile, &query.id_number) {
            (Some(m), None) => IndexMatch {
                field: MOBILE_INDEX,
                tokens: self.keys.index_candidates(MOBILE_INDEX, m.as_str()),
            },
            (None, Some(i)) => IndexMatch {
                field: ID_NUMBER_INDEX,
                tokens: self.keys.index_candidates(ID_NUMBER_INDEX, i.as_str()),
            },
            _ => {
                return Err(AppError::Invalid(
                    "search by exactly one of mobile or id_number".into(),
                ))
            }
        };
        let field = index.field;
        let q = RecordQuery {
            index: Some(index),
            limit: 100,
            ..RecordQuery::new(KIND)
        };
        let event = self
            .record_event(grant, meta, AuditAction::RecordSearched, KIND, "")
            .fields(&[field]);
        // The search itself is audited, whatever it finds.
        let hits = self.store.record_query(grant.scope(), q, None).await?;
        self.store.audit_append(event).await?;
        let mut keys = KeyCache::new(self);
        hits.iter()
            .map(|h| self.contact_view(h, &mut keys, grant, true))
            .collect()
    }
}

/// WeChat ids have no fixed shape; show the first and last two characters.
fn mask_middle(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 4))
}
