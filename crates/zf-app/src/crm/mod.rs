//! The firm's daily work on a client: contacts, contracts, financial records, filing tasks,
//! interactions, documents, custody of UKeys and seals, fees, and leads before they are
//! clients. One module per aggregate; this one holds what they share: sealing a record's
//! sensitive payload under its client's key, the record's audit event, and its common view.

pub mod batch;
pub mod contacts;
pub mod contracts;
pub mod custody;
pub mod documents;
pub mod fees;
pub mod filings;
pub mod financials;
pub mod interactions;
pub mod leads;
pub mod transfer;

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;
use zf_audit::{AuditAction, AuditEvent, Outcome};
use zf_crypto::{Aad, DekRing, Sealed};
use zf_domain::{ClientId, RecordId};
use zf_policy::{Grant, Visibility};
use zf_store::{ClientRecord, RecordHit, RecordKind, RecordRow, RecordWrite};

use crate::{actor, now_ms, App, AppError, RequestMeta, SensitiveValue};

/// What every record view shows besides its own fields.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RecordMeta {
    #[schema(value_type = String, format = Uuid)]
    pub id: RecordId,
    #[schema(value_type = String, format = Uuid)]
    pub client_id: ClientId,
    pub client_name: String,
    /// Unix time in milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// Send it back as `version` (or in `If-Match`) to change the record safely.
    pub version: i64,
}

impl RecordMeta {
    pub(crate) fn of(hit: &RecordHit) -> Self {
        RecordMeta {
            id: hit.row.id,
            client_id: hit.row.client_id,
            client_name: hit.client_name.as_str().to_owned(),
            created_at: hit.row.created_at_ms,
            updated_at: hit.row.updated_at_ms,
            version: hit.row.version,
        }
    }
}

/// A sensitive value at a visibility: the full text, a masked form, or nothing.
pub(crate) fn shown(
    visibility: Visibility,
    full: &str,
    masked: impl FnOnce() -> String,
) -> SensitiveValue {
    match visibility {
        Visibility::Visible => SensitiveValue::Visible(full.to_owned()),
        Visibility::Masked => SensitiveValue::Masked(masked()),
        Visibility::Hidden => SensitiveValue::Hidden,
    }
}

/// Lists spanning many clients never show a sensitive field in full.
pub(crate) fn at_most_masked(v: Visibility) -> Visibility {
    match v {
        Visibility::Visible | Visibility::Masked => Visibility::Masked,
        Visibility::Hidden => Visibility::Hidden,
    }
}

/// The search tokens of a record of `kind` from its opened payload, as the kind's module
/// computes them on every write; empty for kinds without any.
pub(crate) fn record_tokens(
    app: &App,
    kind: RecordKind,
    payload: &[u8],
) -> Result<Vec<zf_store::IndexEntry>, AppError> {
    match kind {
        RecordKind::Contact => app.contact_tokens(payload),
        RecordKind::Contract
        | RecordKind::Financial
        | RecordKind::FilingTask
        | RecordKind::Interaction
        | RecordKind::Document
        | RecordKind::CustodyItem
        | RecordKind::CustodyMovement
        | RecordKind::Payment => Ok(Vec::new()),
    }
}

/// The kinds of record [`record_tokens`] computes tokens for.
pub(crate) const INDEXED_KINDS: [RecordKind; 1] = [RecordKind::Contact];

pub(crate) fn aad(kind: RecordKind, id: RecordId, part: &'static str) -> Aad {
    Aad::new(kind.as_str(), id.to_string(), part)
}

/// Unwraps each client's data key once while a listing walks records of many clients.
pub(crate) struct KeyCache<'a> {
    app: &'a App,
    keys: HashMap<ClientId, DekRing>,
}

impl<'a> KeyCache<'a> {
    pub(crate) fn new(app: &'a App) -> Self {
        KeyCache {
            app,
            keys: HashMap::new(),
        }
    }

    pub(crate) fn get(
        &mut self,
        client: ClientId,
        wrapped: &zf_store::KeySlots,
    ) -> Result<&DekRing, AppError> {
        if !self.keys.contains_key(&client) {
            let dek = self.app.keys.client_key(client, wrapped)?;
            self.keys.insert(client, dek);
        }
        Ok(&self.keys[&client])
    }
}

impl App {
    pub(crate) fn record_event(
        &self,
        grant: &Grant,
        meta: &RequestMeta,
        action: AuditAction,
        kind: RecordKind,
        id: impl ToString,
    ) -> AuditEvent {
        AuditEvent::new(now_ms(), actor(grant, meta), action, Outcome::Success)
            .request(meta.request_id.clone())
            .on(kind.as_str(), id)
    }

    /// The client (in the caller's scope) and its unwrapped data key; `NotFound` otherwise, so
    /// an id outside the scope tells nothing.
    pub(crate) async fn scoped_client(
        &self,
        grant: &Grant,
        client: ClientId,
    ) -> Result<(ClientRecord, DekRing), AppError> {
        let record = self
            .store
            .client_get(grant.scope(), client)
            .await?
            .ok_or(AppError::NotFound)?;
        let dek = self.keys.client_key(client, &record.key)?;
        Ok((record, dek))
    }

    /// Seals a record's sensitive payload, bound to its kind and id.
    pub(crate) fn seal_json<T: Serialize>(
        &self,
        dek: &DekRing,
        kind: RecordKind,
        id: RecordId,
        value: &T,
    ) -> Result<Sealed, AppError> {
        let plain = Zeroizing::new(
            serde_json::to_vec(value).map_err(|e| AppError::Internal(e.to_string()))?,
        );
        Ok(dek.seal(&plain, &aad(kind, id, "sealed")))
    }

    pub(crate) fn seal_bytes(
        &self,
        dek: &DekRing,
        kind: RecordKind,
        id: RecordId,
        bytes: &[u8],
    ) -> Sealed {
        dek.seal(bytes, &aad(kind, id, "content"))
    }

    pub(crate) fn open_bytes(
        &self,
        dek: &DekRing,
        kind: RecordKind,
        id: RecordId,
        sealed: &Sealed,
    ) -> Result<Vec<u8>, AppError> {
        Ok(dek.open(sealed, &aad(kind, id, "content"))?.to_vec())
    }

    /// Opens a record's sensitive payload; a payload that decrypts but no longer parses is
    /// reported as an internal error, never passed on.
    pub(crate) fn open_json<T: DeserializeOwned>(
        &self,
        dek: &DekRing,
        row: &RecordRow,
    ) -> Result<T, AppError> {
        let sealed = row.sealed.as_ref().ok_or_else(|| {
            AppError::Internal(format!(
                "{} {} has no sealed part",
                row.kind.as_str(),
                row.id
            ))
        })?;
        let plain = Zeroizing::new(dek.open(sealed, &aad(row.kind, row.id, "sealed"))?);
        serde_json::from_slice(&plain).map_err(|e| {
            AppError::Internal(format!(
                "sealed {} {} does not parse: {e}",
                row.kind.as_str(),
                row.id
            ))
        })
    }

    /// One record of a client in scope, or `NotFound`.
    pub(crate) async fn record_one(
        &self,
        grant: &Grant,
        kind: RecordKind,
        client: ClientId,
        id: RecordId,
    ) -> Result<RecordHit, AppError> {
        let q = zf_store::RecordQuery {
            id: Some(id),
            ..zf_store::RecordQuery::of_client(kind, client)
        };
        self.store
            .record_query(grant.scope(), q, None)
            .await?
            .into_iter()
            .next()
            .ok_or(AppError::NotFound)
    }

    /// Deletes a record (and what hangs from it) with its audit event.
    pub(crate) async fn record_delete(
        &self,
        grant: &Grant,
        kind: RecordKind,
        client: ClientId,
        id: RecordId,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let event = self.record_event(grant, meta, AuditAction::RecordDeleted, kind, id);
        self.store
            .record_write(
                grant.scope(),
                client,
                vec![zf_store::RecordOp::Delete { id, kind }],
                event,
            )
            .await?;
        Ok(())
    }

    /// Commits one unit of work built for [`RecordStore::record_write_many`] through the
    /// single-write path, so a use-case and its batched form write the same thing.
    pub(crate) async fn record_write_one(&self, w: RecordWrite) -> Result<u64, AppError> {
        Ok(self
            .store
            .record_write(w.scope, w.client, w.ops, w.event)
            .await?)
    }

    pub(crate) fn plain_json<T: DeserializeOwned>(&self, row: &RecordRow) -> Result<T, AppError> {
        serde_json::from_str(&row.plain).map_err(|e| {
            AppError::Internal(format!(
                "stored {} {} does not parse: {e}",
                row.kind.as_str(),
                row.id
            ))
        })
    }
}

/// The unit of work that inserts one new record with its audit event.
pub(crate) fn insert_write(
    grant: &Grant,
    row: RecordRow,
    indexes: Vec<zf_store::IndexEntry>,
    event: AuditEvent,
) -> RecordWrite {
    RecordWrite {
        scope: grant.scope(),
        client: row.client_id,
        ops: vec![zf_store::RecordOp::Insert {
            row,
            indexes,
            blob: None,
        }],
        event,
    }
}

/// A new record row of `kind` for `client`, created now by the caller.
pub(crate) fn new_row(grant: &Grant, kind: RecordKind, client: ClientId) -> RecordRow {
    let now = now_ms();
    RecordRow {
        id: RecordId::new_random(),
        client_id: client,
        kind,
        parent_id: None,
        label: String::new(),
        status: None,
        period: None,
        due_on: None,
        holder: None,
        plain: "{}".into(),
        sealed: None,
        created_by: grant.principal().map(|p| p.user_id),
        created_at_ms: now,
        updated_at_ms: now,
        version: 1,
    }
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, AppError> {
    serde_json::to_string(value).map_err(|e| AppError::Internal(e.to_string()))
}

impl App {
    /// The grant of a named, enabled user for an operation run on the server's command line
    /// (`zhangfang import --as`, `export --as`, `demo`). The user's role and scope decide, as for
    /// a request; what differs is only that no session carries it, so the rules that protect
    /// sessions (one-time password, step-up) do not apply.
    pub async fn operator_grant(
        &self,
        username: &zf_domain::Username,
        operation: zf_policy::Operation,
    ) -> Result<Grant, AppError> {
        let user = self
            .store
            .user_by_username(username)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(|| AppError::Invalid(format!("no active user {}", username.as_str())))?;
        let principal = zf_policy::Principal {
            user_id: user.id,
            username: user.username,
            role: user.role,
            custom_role: user.custom_role.clone(),
            team: user.team.clone(),
            must_change_password: false,
            // Whoever runs the binary on the server holds its data directory and master key,
            // which outweighs any factor a session could show; the step-up rule guards sessions.
            authentication: zf_policy::Authentication::MultiFactor { fresh: true },
            factors: zf_policy::Factors::default(),
            token: None,
        };
        Ok(zf_policy::decide(Some(&principal), operation)?)
    }
}
