//! Proof that a restored database is usable, not merely present: every sealed field of every
//! client, record, document and lead is opened with this instance's keys. A backup whose rows
//! all arrived but whose keys no longer unwrap would pass every digest and still be worthless.

use serde::Serialize;
use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_policy::Scope;
use zf_store::{Page, RecordKind, RecordQuery};

use crate::{App, AppError};

const PAGE: u32 = 500;
const PER_CLIENT: u32 = 1_000_000;

/// What was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SealedCheck {
    pub clients: u64,
    pub records: u64,
    pub documents: u64,
    pub leads: u64,
    /// Sealed values opened (ID numbers, notes, record payloads, document contents, leads).
    pub fields_opened: u64,
}

impl App {
    /// Opens every sealed value in the store. The first that fails (a key that does not unwrap,
    /// a tag that does not verify, a payload that does not parse) is the error.
    pub async fn sealed_check(&self) -> Result<SealedCheck, AppError> {
        let mut check = SealedCheck::default();
        let mut offset = 0;
        loop {
            let clients = self
                .store
                .client_list(
                    Scope::All,
                    Page {
                        offset,
                        limit: PAGE,
                    },
                )
                .await?;
            if clients.is_empty() {
                break;
            }
            offset += clients.len() as u32;
            for client in clients {
                let id = client.row.id;
                let dek = self.keys.client_key(id, &client.key)?;
                self.open_id_number(&client, &dek)?;
                check.fields_opened += 1;
                if let Some(notes) = &client.row.notes {
                    self.open_notes(id, notes, &dek)?;
                    check.fields_opened += 1;
                }
                check.clients += 1;
                for kind in RecordKind::ALL {
                    let query = RecordQuery {
                        limit: PER_CLIENT,
                        ..RecordQuery::of_client(kind, id)
                    };
                    for hit in self.store.record_query(Scope::All, query, None).await? {
                        check.records += 1;
                        if hit.row.sealed.is_some() {
                            self.open_json::<serde_json::Value>(&dek, &hit.row)?;
                            check.fields_opened += 1;
                        }
                        if kind == RecordKind::Document {
                            // Reading a document's bytes is an audited read, here as anywhere.
                            let event = AuditEvent::new(
                                self.now_ms(),
                                Actor::system(),
                                AuditAction::DocumentDownloaded,
                                Outcome::Success,
                            )
                            .on(kind.as_str(), hit.row.id)
                            .detail("sealed-field check of a restored database");
                            let (_, sealed) = self
                                .store
                                .record_blob(Scope::All, id, hit.row.id, event)
                                .await?
                                .ok_or_else(|| {
                                    AppError::Internal(format!(
                                        "document {} has no content",
                                        hit.row.id
                                    ))
                                })?;
                            self.open_bytes(&dek, kind, hit.row.id, &sealed)?;
                            check.documents += 1;
                            check.fields_opened += 1;
                        }
                    }
                }
            }
        }
        for lead in self.store.lead_list(None, u32::MAX).await? {
            self.lead_open(&lead)?;
            check.leads += 1;
            check.fields_opened += 1;
        }
        Ok(check)
    }
}
