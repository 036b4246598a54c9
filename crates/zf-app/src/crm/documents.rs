//! Documents of a client (资料): business licence scans, ID copies, signed contracts. The
//! content and the file name are sealed under the client's key; the type is decided from the
//! bytes, never from the name, and only PDF and images are kept.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zf_audit::AuditAction;
use zf_domain::{ClientId, DocumentKind, DocumentType, FileName, RecordId, MAX_DOCUMENT_BYTES};
use zf_policy::Grant;
use zf_store::{RecordHit, RecordKind, RecordOp, RecordQuery};

use super::{new_row, to_json, KeyCache, RecordMeta};
use crate::{App, AppError, RequestMeta};

const KIND: RecordKind = RecordKind::Document;

/// What the uploader says about a file; the bytes say what it is.
#[derive(Clone, Debug)]
pub struct DocumentUpload {
    pub kind: DocumentKind,
    pub file_name: FileName,
    /// The contract this document belongs to (a signed PDF).
    pub contract: Option<RecordId>,
    pub content: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Plain {
    kind: DocumentKind,
    content_type: String,
    size: u64,
}

#[derive(Serialize, Deserialize)]
struct Secret {
    file_name: FileName,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DocumentView {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub kind: DocumentKind,
    pub kind_label: &'static str,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub contract: Option<RecordId>,
}

/// A document's content, opened for download.
#[derive(Clone)]
pub struct DocumentContent {
    pub file_name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for DocumentContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentContent")
            .field("content_type", &self.content_type)
            .field("size", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl App {
    fn document_view(
        &self,
        hit: &RecordHit,
        keys: &mut KeyCache<'_>,
    ) -> Result<DocumentView, AppError> {
        let p: Plain = self.plain_json(&hit.row)?;
        let s: Secret = self.open_json(keys.get(hit.row.client_id, &hit.key)?, &hit.row)?;
        Ok(DocumentView {
            meta: RecordMeta::of(hit),
            kind: p.kind,
            kind_label: p.kind.label_zh(),
            file_name: s.file_name.as_str().to_owned(),
            content_type: p.content_type,
            size: p.size,
            contract: hit.row.parent_id,
        })
    }

    /// Stores a document after checking its size and, from its bytes, its type.
    pub async fn document_upload(
        &self,
        grant: &Grant,
        client: ClientId,
        upload: DocumentUpload,
        meta: &RequestMeta,
    ) -> Result<DocumentView, AppError> {
        if upload.content.is_empty() {
            return Err(AppError::Invalid("the file is empty".into()));
        }
        if upload.content.len() > MAX_DOCUMENT_BYTES {
            return Err(AppError::TooLarge(format!(
                "a document may be at most {} MiB",
                MAX_DOCUMENT_BYTES / (1024 * 1024)
            )));
        }
        let doc_type = DocumentType::sniff(&upload.content)
            .map_err(|e| AppError::Unsupported(e.to_string()))?;
        let (_, dek) = self.scoped_client(grant, client).await?;
        if let Some(contract) = upload.contract {
            self.record_one(grant, RecordKind::Contract, client, contract)
                .await?;
        }
        let mut row = new_row(grant, KIND, client);
        row.parent_id = upload.contract;
        row.label = upload.kind.as_str().to_owned();
        row.plain = to_json(&Plain {
            kind: upload.kind,
            content_type: doc_type.content_type().to_owned(),
            size: upload.content.len() as u64,
        })?;
        row.sealed = Some(self.seal_json(
            &dek,
            KIND,
            row.id,
            &Secret {
                file_name: upload.file_name,
            },
        )?);
        let blob = self.seal_bytes(&dek, KIND, row.id, &upload.content);
        let id = row.id;
        let event = self
            .record_event(grant, meta, AuditAction::RecordCreated, KIND, id)
            .fields(&["file_name", "content"])
            .detail(format!(
                "{} bytes, {}",
                upload.content.len(),
                doc_type.content_type()
            ));
        self.store
            .record_write(
                grant.scope(),
                client,
                vec![RecordOp::Insert {
                    row,
                    indexes: Vec::new(),
                    blob: Some(blob),
                }],
                event,
            )
            .await?;
        let hit = self.record_one(grant, KIND, client, id).await?;
        self.document_view(&hit, &mut KeyCache::new(self))
    }

    pub async fn document_list(
        &self,
        grant: &Grant,
        client: ClientId,
    ) -> Result<Vec<DocumentView>, AppError> {
        let hits = self
            .store
            .record_query(grant.scope(), RecordQuery::of_client(KIND, client), None)
            .await?;
        let mut keys = KeyCache::new(self);
        hits.iter()
            .map(|h| self.document_view(h, &mut keys))
            .collect()
    }

    /// A document's content; the download is audited before the bytes leave.
    pub async fn document_download(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
        meta: &RequestMeta,
    ) -> Result<DocumentContent, AppError> {
        let event = self
            .record_event(grant, meta, AuditAction::DocumentDownloaded, KIND, id)
            .fields(&["content"]);
        let (hit, sealed) = self
            .store
            .record_blob(grant.scope(), client, id, event)
            .await?
            .ok_or(AppError::NotFound)?;
        let dek = self.keys.client_key(client, &hit.key)?;
        let p: Plain = self.plain_json(&hit.row)?;
        let s: Secret = self.open_json(&dek, &hit.row)?;
        Ok(DocumentContent {
            file_name: s.file_name.as_str().to_owned(),
            content_type: p.content_type,
            bytes: self.open_bytes(&dek, KIND, id, &sealed)?,
        })
    }

    pub async fn document_delete(
        &self,
        grant: &Grant,
        client: ClientId,
        id: RecordId,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        self.record_delete(grant, KIND, client, id, meta).await
    }
}
