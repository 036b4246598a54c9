//! Import and export of the client list as CSV or XLSX with Chinese column headers, the way
//! firms already keep it in Excel.
//!
//! An import validates every row before anything is written and names each bad row and
//! column; by default one bad row means nothing is written, and a partial import writes the
//! good rows and hands back the bad ones as a file to fix. An export is a permissioned,
//! audited operation whose ID numbers are masked unless the caller may reveal them; the file
//! layer escapes every cell a spreadsheet would run as a formula.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use utoipa::ToSchema;
use zf_audit::{AuditAction, AuditEvent, Outcome};
use zf_domain::{
    ClientName, ClientStatus, Fen, IdNumber, NewClient, Notes, PersonName, ShortText, Tags,
    TaxpayerType, Uscc, UserId,
};
use zf_policy::{Action, Field, Grant, Permission, Resource, Role, Visibility};
use zf_store::{ClientQuery, ClientRecord, ClientSort, SortKey};
use zf_tabular::{Column, Format, Limits, Row, Table};

use crate::{actor, now_ms, App, AppError, RequestMeta};

/// The columns of the client list, in the order an export writes them.
pub const CLIENT_COLUMNS: &[Column] = &[
    Column {
        key: "name",
        header: "客户名称",
        aliases: &["企业名称", "公司名称", "name"],
        required: true,
    },
    Column {
        key: "uscc",
        header: "统一社会信用代码",
        aliases: &["信用代码", "社会信用代码", "uscc"],
        required: true,
    },
    Column {
        key: "taxpayer_type",
        header: "纳税人类型",
        aliases: &["taxpayer_type"],
        required: true,
    },
    Column {
        key: "legal_rep_name",
        header: "法定代表人",
        aliases: &["法人", "法人代表", "legal_rep_name"],
        required: true,
    },
    Column {
        key: "legal_rep_id_number",
        header: "法定代表人身份证号",
        aliases: &["法人身份证号", "身份证号", "legal_rep_id_number"],
        required: true,
    },
    Column {
        key: "status",
        header: "客户状态",
        aliases: &["状态", "status"],
        required: false,
    },
    Column {
        key: "accountant",
        header: "负责会计",
        aliases: &["会计", "accountant"],
        required: false,
    },
    Column {
        key: "team",
        header: "所属团队",
        aliases: &["团队", "team"],
        required: false,
    },
    Column {
        key: "tags",
        header: "标签",
        aliases: &["tags"],
        required: false,
    },
    Column {
        key: "registered_capital",
        header: "注册资本(元)",
        aliases: &["注册资本", "registered_capital"],
        required: false,
    },
    Column {
        key: "tax_authority",
        header: "主管税务机关",
        aliases: &["税务机关", "tax_authority"],
        required: false,
    },
    Column {
        key: "notes",
        header: "备注",
        aliases: &["notes"],
        required: false,
    },
];

/// One rejected cell of an import.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ImportError {
    /// The row number as the spreadsheet shows it (the header is row 1).
    pub row: usize,
    pub column: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ImportReport {
    /// Data rows in the file.
    pub rows: usize,
    pub imported: usize,
    /// Every problem found, row by row.
    pub errors: Vec<ImportError>,
    /// Whether anything was written.
    pub written: bool,
    /// Columns in the file that are not part of the client list; they were ignored.
    pub ignored_columns: Vec<String>,
    /// With a partial import that had errors: the rejected rows with a reason column, as CSV,
    /// ready to fix and import again.
    #[serde(skip)]
    pub rejected_rows: Option<Vec<u8>>,
}

/// An exported file.
#[derive(Clone)]
pub struct Export {
    pub format: Format,
    pub bytes: Vec<u8>,
    pub rows: usize,
    /// Whether ID numbers are in the file in full.
    pub revealed: bool,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("rows", &self.rows)
            .field("revealed", &self.revealed)
            .finish_non_exhaustive()
    }
}

/// The most rows one import takes; larger lists are split.
pub const MAX_IMPORT_ROWS: usize = 100_000;

fn cell_error(row: &Row, column: &Column, reason: impl ToString) -> ImportError {
    ImportError {
        row: row.number,
        column: column.header.to_owned(),
        reason: reason.to_string(),
    }
}

fn column(key: &str) -> &'static Column {
    CLIENT_COLUMNS
        .iter()
        .find(|c| c.key == key)
        .unwrap_or(&CLIENT_COLUMNS[0])
}

/// A parsed row: the new client and the accountant it names.
struct Parsed {
    number: usize,
    client: NewClient,
    accountant: Option<String>,
}

/// Parses one row into a client, or every problem with it.
fn parse_row(row: &Row, map: &zf_tabular::ColumnMap) -> Result<Parsed, Vec<ImportError>> {
    let mut errors = Vec::new();
    let get = |key: &str| map.get(row, key).filter(|v| !v.is_empty());
    macro_rules! required {
        ($key:literal, $parse:expr) => {
            match get($key) {
                None => {
                    errors.push(cell_error(row, column($key), "this column is required"));
                    None
                }
                Some(v) => match $parse(v) {
                    Ok(x) => Some(x),
                    Err(e) => {
                        errors.push(cell_error(row, column($key), e));
                        None
                    }
                },
            }
        };
    }
    macro_rules! optional {
        ($key:literal, $parse:expr) => {
            match get($key) {
                None => None,
                Some(v) => match $parse(v) {
                    Ok(x) => Some(x),
                    Err(e) => {
                        errors.push(cell_error(row, column($key), e));
                        None
                    }
                },
            }
        };
    }
    let name = required!("name", ClientName::parse);
    let uscc = required!("uscc", Uscc::parse);
    let taxpayer_type = required!("taxpayer_type", TaxpayerType::parse);
    let legal_rep_name = required!("legal_rep_name", PersonName::parse);
    let id_number = required!("legal_rep_id_number", IdNumber::parse);
    let status = optional!("status", ClientStatus::parse);
    let team = optional!("team", ShortText::parse);
    let tags = optional!("tags", Tags::parse);
    let capital = optional!("registered_capital", Fen::parse_yuan);
    let authority = optional!("tax_authority", ShortText::parse);
    let notes = optional!("notes", Notes::parse);
    let accountant = get("accountant").map(str::to_owned);
    match (name, uscc, taxpayer_type, legal_rep_name, id_number) {
        (Some(name), Some(uscc), Some(taxpayer_type), Some(legal_rep_name), Some(id))
            if errors.is_empty() =>
        {
            Ok(Parsed {
                number: row.number,
                client: NewClient {
                    name,
                    uscc,
                    taxpayer_type,
                    legal_rep_name,
                    legal_rep_id_number: id,
                    status,
                    tags,
                    team,
                    notes,
                    registered_capital: capital,
                    tax_authority: authority,
                },
                accountant,
            })
        }
        _ => Err(errors),
    }
}

impl App {
    /// Imports clients from a CSV or XLSX file. Every row is checked first — its fields, USCCs
    /// repeated in the file or already registered, accountants that do not exist — and nothing
    /// is written while any row is bad, unless `partial` asks to write the good ones.
    pub async fn client_import(
        &self,
        grant: &Grant,
        bytes: &[u8],
        partial: bool,
        meta: &RequestMeta,
    ) -> Result<ImportReport, AppError> {
        let limits = Limits {
            max_rows: MAX_IMPORT_ROWS,
            ..Limits::default()
        };
        let table =
            zf_tabular::read(bytes, &limits).map_err(|e| AppError::Invalid(e.to_string()))?;
        let map = zf_tabular::map_columns(&table.headers, CLIENT_COLUMNS)
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        let mut errors = Vec::new();
        let mut parsed = Vec::new();
        for row in &table.rows {
            match parse_row(row, &map) {
                Ok(p) => parsed.push(p),
                Err(e) => errors.extend(e),
            }
        }
        // A USCC may appear once in the file and must not be registered already.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let taken: HashSet<String> = self
            .store
            .client_usccs_taken(
                parsed
                    .iter()
                    .map(|p| p.client.uscc.as_str().to_owned())
                    .collect(),
            )
            .await?
            .into_iter()
            .collect();
        let accountants = self.accountants_by_name(&parsed).await?;
        let mut bad_rows: HashSet<usize> = errors.iter().map(|e| e.row).collect();
        for p in &parsed {
            let uscc = p.client.uscc.as_str();
            let mut fail = |column: &Column, reason: String| {
                errors.push(ImportError {
                    row: p.number,
                    column: column.header.to_owned(),
                    reason,
                });
                bad_rows.insert(p.number);
            };
            if let Some(first) = seen.get(uscc) {
                fail(
                    column("uscc"),
                    format!("the same USCC is on row {first} already"),
                );
            } else {
                seen.insert(uscc.to_owned(), p.number);
                if taken.contains(uscc) {
                    fail(
                        column("uscc"),
                        "a client with this USCC exists already".into(),
                    );
                }
            }
            if let Some(name) = &p.accountant {
                if !accountants.contains_key(name) {
                    fail(
                        column("accountant"),
                        format!("{name:?} is not an active accountant or supervisor"),
                    );
                }
            }
        }
        errors.sort_by_key(|e| e.row);
        let good: Vec<Parsed> = parsed
            .into_iter()
            .filter(|p| !bad_rows.contains(&p.number))
            .collect();
        let mut report = ImportReport {
            rows: table.rows.len(),
            imported: 0,
            errors,
            written: false,
            ignored_columns: map.unknown().to_vec(),
            rejected_rows: None,
        };
        if !report.errors.is_empty() {
            if !partial {
                self.audit_import(grant, meta, Outcome::Failed, &report)
                    .await?;
                return Ok(report);
            }
            report.rejected_rows = Some(rejected_file(&table, &report.errors));
        }
        if good.is_empty() {
            return Ok(report);
        }
        let batch: Vec<(NewClient, Option<UserId>)> = good
            .into_iter()
            .map(|p| {
                let assigned = p
                    .accountant
                    .as_ref()
                    .and_then(|n| accountants.get(n))
                    .copied();
                (p.client, assigned)
            })
            .collect();
        report.imported = batch.len();
        report.written = true;
        let summary = self.import_event(grant, meta, Outcome::Success, &report);
        self.clients_create_many(grant, batch, Some(summary), meta)
            .await?;
        Ok(report)
    }

    /// Creates many clients in one transaction — all or none — each with its own data key and
    /// its own audit event, plus `summary` when given. Import and the demo data set write
    /// through here. Returns the new ids in order.
    pub async fn clients_create_many(
        &self,
        grant: &Grant,
        clients: Vec<(NewClient, Option<UserId>)>,
        summary: Option<AuditEvent>,
        meta: &RequestMeta,
    ) -> Result<Vec<zf_domain::ClientId>, AppError> {
        let mut rows = Vec::with_capacity(clients.len());
        let mut events = Vec::with_capacity(clients.len() + 1);
        let mut ids = Vec::with_capacity(clients.len());
        for (client, assigned) in clients {
            let (record, _) = self.client_row(grant, client, assigned)?;
            events.push(
                AuditEvent::new(
                    now_ms(),
                    actor(grant, meta),
                    AuditAction::ClientCreated,
                    Outcome::Success,
                )
                .request(meta.request_id.clone())
                .on("clients", record.row.id)
                .fields(&[
                    "name",
                    "uscc",
                    "taxpayer_type",
                    "legal_rep_name",
                    "legal_rep_id_number",
                ]),
            );
            ids.push(record.row.id);
            rows.push((record.row, record.key.current.wrapped));
        }
        events.extend(summary);
        self.store.client_insert_many(rows, events).await?;
        Ok(ids)
    }

    fn import_event(
        &self,
        grant: &Grant,
        meta: &RequestMeta,
        outcome: Outcome,
        report: &ImportReport,
    ) -> AuditEvent {
        AuditEvent::new(
            now_ms(),
            actor(grant, meta),
            AuditAction::ClientsImported,
            outcome,
        )
        .request(meta.request_id.clone())
        .detail(format!(
            "{} rows, {} imported, {} errors",
            report.rows,
            report.imported,
            report.errors.len()
        ))
    }

    async fn audit_import(
        &self,
        grant: &Grant,
        meta: &RequestMeta,
        outcome: Outcome,
        report: &ImportReport,
    ) -> Result<(), AppError> {
        self.store
            .audit_append(self.import_event(grant, meta, outcome, report))
            .await?;
        Ok(())
    }

    /// Active accountants and supervisors named in an import, by username.
    async fn accountants_by_name(
        &self,
        parsed: &[Parsed],
    ) -> Result<HashMap<String, UserId>, AppError> {
        let names: HashSet<&String> = parsed
            .iter()
            .filter_map(|p| p.accountant.as_ref())
            .collect();
        let mut out = HashMap::new();
        for name in names {
            let Ok(username) = zf_domain::Username::parse(name) else {
                continue;
            };
            if let Some(user) = self.store.user_by_username(&username).await? {
                if !user.disabled && matches!(user.role, Role::Accountant | Role::Supervisor) {
                    out.insert(name.clone(), user.id);
                }
            }
        }
        Ok(out)
    }

    /// Every client in the caller's scope as a CSV or XLSX file. ID numbers are in full only
    /// for a caller who may reveal them; the export is audited with how many rows left and
    /// whether they were masked, before the file is handed out.
    pub async fn client_export(
        &self,
        grant: &Grant,
        format: Format,
        meta: &RequestMeta,
    ) -> Result<Export, AppError> {
        let revealed = grant.may(Permission::new(Resource::Client, Action::Reveal))
            && grant.visibility(Field::LegalRepIdNumber) == Visibility::Visible;
        let records = self.all_clients(grant).await?;
        let names = self.usernames().await?;
        let mut table = Table {
            headers: CLIENT_COLUMNS.iter().map(|c| c.header.to_owned()).collect(),
            rows: Vec::with_capacity(records.len()),
        };
        for (i, record) in records.iter().enumerate() {
            let dek = self.keys.client_key(record.row.id, &record.key)?;
            let view = self.client_view_at(grant, record, &dek)?;
            let r = &record.row;
            let id_number = if revealed {
                view.legal_rep_id_number.display().to_owned()
            } else {
                match view.legal_rep_id_number {
                    crate::SensitiveValue::Visible(v) => {
                        IdNumber::parse(&v).map(|i| i.masked()).unwrap_or_default()
                    }
                    other => other.display().to_owned(),
                }
            };
            table.rows.push(Row {
                number: i + 2,
                cells: vec![
                    r.name.as_str().to_owned(),
                    r.uscc.as_str().to_owned(),
                    r.taxpayer_type.label_zh().to_owned(),
                    r.legal_rep_name.as_str().to_owned(),
                    id_number,
                    r.status.label_zh().to_owned(),
                    r.assigned_accountant
                        .and_then(|u| names.get(&u).cloned())
                        .unwrap_or_default(),
                    r.team
                        .as_ref()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                    r.tags
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    r.registered_capital
                        .map(|f| f.to_yuan_string())
                        .unwrap_or_default(),
                    r.tax_authority
                        .as_ref()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                    view.notes.unwrap_or_default(),
                ],
            });
        }
        let bytes = match format {
            Format::Csv => zf_tabular::write_csv(&table),
            Format::Xlsx => zf_tabular::write_xlsx(&table, "客户")
                .map_err(|e| AppError::Internal(e.to_string()))?,
        };
        let event = AuditEvent::new(
            now_ms(),
            actor(grant, meta),
            AuditAction::ClientsExported,
            Outcome::Success,
        )
        .request(meta.request_id.clone())
        .fields(&["name", "uscc", "legal_rep_id_number", "notes"])
        .detail(format!(
            "{} rows, {}, ID numbers {}",
            table.rows.len(),
            format.extension(),
            if revealed { "in full" } else { "masked" }
        ));
        self.store.audit_append(event).await?;
        Ok(Export {
            format,
            rows: table.rows.len(),
            bytes,
            revealed,
        })
    }

    async fn all_clients(&self, grant: &Grant) -> Result<Vec<ClientRecord>, AppError> {
        let mut out: Vec<ClientRecord> = Vec::new();
        let mut after: Option<(SortKey, zf_domain::ClientId)> = None;
        loop {
            let q = ClientQuery {
                sort: ClientSort::Name,
                after: after.clone(),
                limit: 2000,
                ..ClientQuery::default()
            };
            let page = self.store.client_query(grant.scope(), q).await?;
            let full = page.len() == 2000;
            after = page
                .last()
                .map(|r| (SortKey::Text(r.row.name.as_str().to_owned()), r.row.id));
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }

    async fn usernames(&self) -> Result<HashMap<UserId, String>, AppError> {
        Ok(self
            .store
            .users_enabled()
            .await?
            .into_iter()
            .map(|u| (u.id, u.username.as_str().to_owned()))
            .collect())
    }
}

/// The rejected rows of an import as CSV, each with its reasons in a last column.
fn rejected_file(table: &Table, errors: &[ImportError]) -> Vec<u8> {
    let mut reasons: HashMap<usize, Vec<String>> = HashMap::new();
    for e in errors {
        reasons
            .entry(e.row)
            .or_default()
            .push(format!("{}: {}", e.column, e.reason));
    }
    let mut headers = table.headers.clone();
    headers.push("错误原因".to_owned());
    let rows = table
        .rows
        .iter()
        .filter_map(|r| {
            reasons.get(&r.number).map(|why| {
                let mut cells = r.cells.clone();
                cells.resize(table.headers.len(), String::new());
                cells.push(why.join("; "));
                Row {
                    number: r.number,
                    cells,
                }
            })
        })
        .collect();
    zf_tabular::write_csv(&Table { headers, rows })
}
