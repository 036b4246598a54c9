//! Records that belong to one client — contacts, contracts, financial records, filing tasks,
//! interactions, documents, custody items and their movements, payments — in one table.
//!
//! The store knows only the columns it must filter and sort by (a label, a status, a period,
//! a due date, a holder) and keeps everything else as two opaque payloads: the plain JSON of
//! non-sensitive fields and the [`Sealed`] JSON of sensitive ones, encrypted by the application
//! under the client's data key. Exact search on a sensitive field goes through the blind
//! indexes in `record_index`. Every query is scoped by the caller's grant through the client
//! the record belongs to, so a record is reachable exactly when its client is.

use crate::scope::sqlite_filter;
use async_trait::async_trait;
use zf_audit::AuditEvent;
use zf_crypto::{BlindIndex, Sealed, WrappedKey};
use zf_domain::{ClientId, ClientName, LeadId, RecordId, UserId};
use zf_policy::Scope;

use crate::{KeySlots, QueryValue, Result};

/// What a record is. The name is stored and is also the table part of the record's AEAD
/// associated data, so a sealed payload cannot be moved from one kind to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Contact,
    Contract,
    Financial,
    FilingTask,
    Interaction,
    Document,
    CustodyItem,
    CustodyMovement,
    Payment,
}

impl RecordKind {
    pub const ALL: [RecordKind; 9] = [
        RecordKind::Contact,
        RecordKind::Contract,
        RecordKind::Financial,
        RecordKind::FilingTask,
        RecordKind::Interaction,
        RecordKind::Document,
        RecordKind::CustodyItem,
        RecordKind::CustodyMovement,
        RecordKind::Payment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Contact => "contact",
            RecordKind::Contract => "contract",
            RecordKind::Financial => "financial_record",
            RecordKind::FilingTask => "filing_task",
            RecordKind::Interaction => "interaction",
            RecordKind::Document => "document",
            RecordKind::CustodyItem => "custody_item",
            RecordKind::CustodyMovement => "custody_movement",
            RecordKind::Payment => "payment",
        }
    }

    pub fn parse(s: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One stored record.
#[derive(Clone, Debug)]
pub struct RecordRow {
    pub id: RecordId,
    pub client_id: ClientId,
    pub kind: RecordKind,
    /// The record this one hangs from: a payment's contract, a movement's custody item.
    pub parent_id: Option<RecordId>,
    /// Non-sensitive text the record is listed and sorted by (a contact's name, a tax kind).
    pub label: String,
    pub status: Option<String>,
    /// A tax or accounting period in its canonical form, e.g. `2026-03`, `2026-Q1`.
    pub period: Option<String>,
    /// `YYYY-MM-DD`: a filing's due date, a contract's end, a follow-up, a return date.
    pub due_on: Option<String>,
    /// The staff member who holds or owns it (a custody item checked out, a follow-up).
    pub holder: Option<UserId>,
    /// JSON of the non-sensitive fields.
    pub plain: String,
    /// JSON of the sensitive fields, sealed under the client's data key.
    pub sealed: Option<Sealed>,
    pub created_by: Option<UserId>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub version: i64,
}

/// A keyed blind index of one sensitive field of a record, for exact-match search.
#[derive(Clone, Debug)]
pub struct IndexEntry {
    pub field: &'static str,
    pub token: BlindIndex,
}

/// A search through a record field's blind index: any of `tokens` matches. While the
/// blind-index key is being rotated a value has a token under the current key and one under the
/// previous key, and a row may still hold either.
#[derive(Clone, Debug)]
pub struct IndexMatch {
    pub field: &'static str,
    pub tokens: Vec<BlindIndex>,
}

impl From<IndexEntry> for IndexMatch {
    fn from(e: IndexEntry) -> Self {
        IndexMatch {
            field: e.field,
            tokens: vec![e.token],
        }
    }
}

/// One change inside a [`crate::Store::record_write`] unit of work.
#[derive(Clone, Debug)]
pub enum RecordOp {
    Insert {
        row: RecordRow,
        indexes: Vec<IndexEntry>,
        /// A document's sealed content.
        blob: Option<Sealed>,
    },
    /// Inserts unless the record would duplicate one that exists (a filing task for the same
    /// tax and period); counts only what was inserted.
    InsertIfAbsent {
        row: RecordRow,
    },
    /// Replaces the mutable columns of a record that is still at `expected_version`; its
    /// indexes are replaced when given.
    Update {
        row: RecordRow,
        expected_version: i64,
        indexes: Option<Vec<IndexEntry>>,
    },
    Delete {
        id: RecordId,
        kind: RecordKind,
    },
}

impl RecordOp {
    /// Values this operation seals under the client's data key when it applies, for the key's
    /// encryption counter.
    pub(crate) fn sealed_values(&self) -> i64 {
        match self {
            RecordOp::Insert { row, blob, .. } => {
                i64::from(row.sealed.is_some()) + i64::from(blob.is_some())
            }
            RecordOp::InsertIfAbsent { row } | RecordOp::Update { row, .. } => {
                i64::from(row.sealed.is_some())
            }
            RecordOp::Delete { .. } => 0,
        }
    }
}

/// One unit of a [`RecordStore::record_write_many`] transaction: what one
/// [`RecordStore::record_write`] call takes, checked and audited the same way.
#[derive(Clone, Debug)]
pub struct RecordWrite {
    pub scope: Scope,
    pub client: ClientId,
    pub ops: Vec<RecordOp>,
    pub event: AuditEvent,
}

/// A search for records. Every filter is optional except the kind; results come in the order
/// of their due date (when they have one), then label.
#[derive(Clone, Debug)]
pub struct RecordQuery {
    pub kind: RecordKind,
    pub client: Option<ClientId>,
    pub id: Option<RecordId>,
    pub parent: Option<RecordId>,
    pub status_in: Vec<String>,
    /// `due_on` on or before this date.
    pub due_until: Option<String>,
    pub holder: Option<UserId>,
    pub index: Option<IndexMatch>,
    pub limit: u32,
}

impl RecordQuery {
    pub fn new(kind: RecordKind) -> Self {
        RecordQuery {
            kind,
            client: None,
            id: None,
            parent: None,
            status_in: Vec::new(),
            due_until: None,
            holder: None,
            index: None,
            limit: 500,
        }
    }

    pub fn of_client(kind: RecordKind, client: ClientId) -> Self {
        RecordQuery {
            client: Some(client),
            ..RecordQuery::new(kind)
        }
    }

    /// The WHERE conditions after the scope filter (which takes parameters 1 and 2), with
    /// placeholders made by `ph(n)`.
    pub(crate) fn clause(&self, ph: impl Fn(usize) -> String) -> (String, Vec<QueryValue>) {
        let mut sql = String::new();
        let mut values: Vec<QueryValue> = Vec::new();
        let mut add = |cond: &str, value: QueryValue, values: &mut Vec<QueryValue>| {
            values.push(value);
            sql.push_str(" AND ");
            sql.push_str(&cond.replace('?', &ph(values.len() + 2)));
        };
        add(
            "r.kind = ?",
            QueryValue::Text(self.kind.as_str().into()),
            &mut values,
        );
        if let Some(c) = self.client {
            add(
                "r.client_id = ?",
                QueryValue::Text(c.to_string()),
                &mut values,
            );
        }
        if let Some(id) = self.id {
            add("r.id = ?", QueryValue::Text(id.to_string()), &mut values);
        }
        if let Some(p) = self.parent {
            add(
                "r.parent_id = ?",
                QueryValue::Text(p.to_string()),
                &mut values,
            );
        }
        if let Some(d) = &self.due_until {
            add("r.due_on <= ?", QueryValue::Text(d.clone()), &mut values);
        }
        if let Some(h) = self.holder {
            add("r.holder = ?", QueryValue::Text(h.to_string()), &mut values);
        }
        if let Some(i) = &self.index {
            values.push(QueryValue::Text(i.field.into()));
            let f = ph(values.len() + 2);
            let mut marks = Vec::new();
            for token in &i.tokens {
                values.push(QueryValue::Bytes(token.as_bytes().to_vec()));
                marks.push(ph(values.len() + 2));
            }
            if marks.is_empty() {
                // No candidate token matches nothing.
                sql.push_str(" AND 1 = 0");
            } else {
                sql.push_str(&format!(
                    " AND r.id IN (SELECT record_id FROM record_index WHERE field = {f} \
                     AND token IN ({}))",
                    marks.join(", ")
                ));
            }
        }
        if !self.status_in.is_empty() {
            let mut marks = Vec::new();
            for s in &self.status_in {
                values.push(QueryValue::Text(s.clone()));
                marks.push(ph(values.len() + 2));
            }
            sql.push_str(&format!(" AND r.status IN ({})", marks.join(", ")));
        }
        (sql, values)
    }
}

/// A record with the client it belongs to and the wrapped key that opens its sealed payload.
#[derive(Clone, Debug)]
pub struct RecordHit {
    pub client_name: ClientName,
    pub key: KeySlots,
    pub row: RecordRow,
}

/// A sales lead: a prospective client, usually a company not yet registered. Its contact
/// details are sealed under its own data key, kept in the row so deleting the lead shreds it.
#[derive(Clone, Debug)]
pub struct LeadRow {
    pub id: LeadId,
    pub company_name: String,
    pub stage: String,
    pub source: Option<String>,
    pub owner: Option<UserId>,
    pub sealed: Sealed,
    pub mobile_index: Option<BlindIndex>,
    /// The lead's data keys; a new lead's is [`KeySlots::first`].
    pub key: KeySlots,
    /// The client it became, once converted.
    pub client_id: Option<ClientId>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub version: i64,
}

/// Storage of records and leads; part of every [`crate::Store`].
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Applies `ops` to records of `client` in one transaction with `event`, if the client is
    /// in `scope` (else `NotFound`). Returns how many records were inserted or changed.
    async fn record_write(
        &self,
        scope: Scope,
        client: ClientId,
        ops: Vec<RecordOp>,
        event: AuditEvent,
    ) -> Result<u64>;
    /// Applies every write as [`RecordStore::record_write`] would, all in one transaction: one
    /// write out of scope or failing leaves none of them applied. Returns each write's count.
    /// Exists for bulk generation, where one commit (and one fsync) per record dominates.
    async fn record_write_many(&self, writes: Vec<RecordWrite>) -> Result<Vec<u64>>;
    /// Records matching `query` whose client is in `scope`. When the query names a client that
    /// is not in scope the answer is `NotFound`. `event`, when given, is committed before the
    /// rows are returned (a sensitive read).
    async fn record_query(
        &self,
        scope: Scope,
        query: RecordQuery,
        event: Option<AuditEvent>,
    ) -> Result<Vec<RecordHit>>;
    /// A document's record and sealed content, with `event` committed first.
    async fn record_blob(
        &self,
        scope: Scope,
        client: ClientId,
        id: RecordId,
        event: AuditEvent,
    ) -> Result<Option<(RecordHit, Sealed)>>;

    async fn lead_insert(&self, row: LeadRow, event: AuditEvent) -> Result<()>;
    /// Leads newest first; those owned by `owner` only, when given.
    async fn lead_list(&self, owner: Option<UserId>, limit: u32) -> Result<Vec<LeadRow>>;
    /// Leads whose mobile index is any of `tokens` (those owned by `owner` only, when given),
    /// newest first.
    async fn lead_find_by_mobile(
        &self,
        owner: Option<UserId>,
        tokens: Vec<BlindIndex>,
        limit: u32,
    ) -> Result<Vec<LeadRow>>;
    /// Up to `limit` leads with ids after `after`, in id order: a re-index walks them.
    async fn leads_after(&self, after: Option<LeadId>, limit: u32) -> Result<Vec<LeadRow>>;
    async fn lead_get(&self, id: LeadId) -> Result<Option<LeadRow>>;
    /// Replaces a lead that is still at `expected_version`.
    async fn lead_update(
        &self,
        row: LeadRow,
        expected_version: i64,
        event: AuditEvent,
    ) -> Result<()>;
    /// Marks a lead converted and creates its client, in one transaction.
    async fn lead_convert(
        &self,
        lead: LeadRow,
        expected_version: i64,
        client: crate::ClientRow,
        key: WrappedKey,
        event: AuditEvent,
    ) -> Result<()>;
}

/// The columns every record query selects, in order, after `r` (records), `c` (clients) and
/// `k` (client keys) are joined; the scope filter takes parameters 1 and 2.
pub(crate) const SELECT: &str = concat!(
    "SELECT r.id, r.client_id, r.kind, r.parent_id, r.label,
    r.status, r.period, r.due_on, r.holder, r.plain, r.sealed, r.created_by, r.created_at,
    r.updated_at, r.version, c.name, k.wrapped_dek, k.dek_version, k.previous_dek,
    k.previous_version
    FROM client_records r
    JOIN clients c ON c.id = r.client_id
    JOIN client_keys k ON k.client_id = r.client_id
    WHERE ",
    sqlite_filter!()
);

pub(crate) const ORDER: &str = " ORDER BY COALESCE(r.due_on, ''), r.label, r.created_at, r.id";

pub(crate) const INSERT: &str = "INSERT INTO client_records (id, client_id, kind, parent_id,
    label, status, period, due_on, holder, plain, sealed, created_by, created_at, updated_at,
    version)";

pub(crate) const LEAD_COLUMNS: &str = "id, company_name, stage, source, owner, sealed,
    mobile_index, wrapped_dek, client_id, created_at, updated_at, version";

/// [`LEAD_COLUMNS`] and the lead's data-key version and previous key, for reading.
pub(crate) const LEAD_SELECT: &str = "id, company_name, stage, source, owner, sealed,
    mobile_index, wrapped_dek, client_id, created_at, updated_at, version, dek_version,
    previous_dek, previous_version";

/// Stored columns of a record row, as read.
pub(crate) struct RecordColumns {
    pub id: String,
    pub client_id: String,
    pub kind: String,
    pub parent_id: Option<String>,
    pub label: String,
    pub status: Option<String>,
    pub period: Option<String>,
    pub due_on: Option<String>,
    pub holder: Option<String>,
    pub plain: String,
    pub sealed: Option<Vec<u8>>,
    pub created_by: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub version: i64,
    pub client_name: String,
    pub wrapped_dek: Vec<u8>,
    pub dek_version: i64,
    pub previous_dek: Option<Vec<u8>>,
    pub previous_version: Option<i64>,
}

pub(crate) fn decode(c: RecordColumns) -> Result<RecordHit> {
    use crate::StoreError;
    let user = |s: Option<String>, column| {
        s.map(|s| UserId::parse(&s).map_err(|e| StoreError::corrupt(column, e)))
            .transpose()
    };
    Ok(RecordHit {
        client_name: ClientName::parse(&c.client_name)
            .map_err(|e| StoreError::corrupt("clients.name", e))?,
        key: KeySlots::decode(
            c.wrapped_dek,
            c.dek_version,
            c.previous_dek,
            c.previous_version,
            "client_keys",
        )?,
        row: RecordRow {
            id: RecordId::parse(&c.id).map_err(|e| StoreError::corrupt("client_records.id", e))?,
            client_id: ClientId::parse(&c.client_id)
                .map_err(|e| StoreError::corrupt("client_records.client_id", e))?,
            kind: RecordKind::parse(&c.kind)
                .ok_or_else(|| StoreError::corrupt("client_records.kind", &c.kind))?,
            parent_id: c
                .parent_id
                .map(|p| RecordId::parse(&p))
                .transpose()
                .map_err(|e| StoreError::corrupt("client_records.parent_id", e))?,
            label: c.label,
            status: c.status,
            period: c.period,
            due_on: c.due_on,
            holder: user(c.holder, "client_records.holder")?,
            plain: c.plain,
            sealed: c
                .sealed
                .map(Sealed::from_bytes)
                .transpose()
                .map_err(|e| StoreError::corrupt("client_records.sealed", e))?,
            created_by: user(c.created_by, "client_records.created_by")?,
            created_at_ms: c.created_at_ms,
            updated_at_ms: c.updated_at_ms,
            version: c.version,
        },
    })
}

/// Stored columns of a lead, as read.
pub(crate) struct LeadColumns {
    pub id: String,
    pub company_name: String,
    pub stage: String,
    pub source: Option<String>,
    pub owner: Option<String>,
    pub sealed: Vec<u8>,
    pub mobile_index: Option<Vec<u8>>,
    pub wrapped_dek: Vec<u8>,
    pub dek_version: i64,
    pub previous_dek: Option<Vec<u8>>,
    pub previous_version: Option<i64>,
    pub client_id: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub version: i64,
}

pub(crate) fn decode_lead(c: LeadColumns) -> Result<LeadRow> {
    use crate::StoreError;
    Ok(LeadRow {
        id: LeadId::parse(&c.id).map_err(|e| StoreError::corrupt("leads.id", e))?,
        company_name: c.company_name,
        stage: c.stage,
        source: c.source,
        owner: c
            .owner
            .map(|s| UserId::parse(&s))
            .transpose()
            .map_err(|e| StoreError::corrupt("leads.owner", e))?,
        sealed: Sealed::from_bytes(c.sealed).map_err(|e| StoreError::corrupt("leads.sealed", e))?,
        mobile_index: c
            .mobile_index
            .map(|b| BlindIndex::from_bytes(&b))
            .transpose()
            .map_err(|e| StoreError::corrupt("leads.mobile_index", e))?,
        key: KeySlots::decode(
            c.wrapped_dek,
            c.dek_version,
            c.previous_dek,
            c.previous_version,
            "leads",
        )?,
        client_id: c
            .client_id
            .map(|s| ClientId::parse(&s))
            .transpose()
            .map_err(|e| StoreError::corrupt("leads.client_id", e))?,
        created_at_ms: c.created_at_ms,
        updated_at_ms: c.updated_at_ms,
        version: c.version,
    })
}
