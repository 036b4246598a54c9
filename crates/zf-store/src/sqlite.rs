//! The embedded store. A request's database work runs as one closure on one pooled blocking
//! connection (one thread hop per request, not per query), inside one transaction.

use crate::scope::sqlite_filter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use zf_audit::{Alert, AlertRecord, AlertStatus, AuditEvent, Checkpoint, StoredEvent};
use zf_crypto::AuditChainKey;
use zf_crypto::{BlindIndex, Sealed, WrappedKey};
use zf_domain::{ClientId, TokenId, UserId, Username};
use zf_policy::Scope;

mod backup;
mod data_keys;
mod erasures;
mod keyring;
mod otp;
mod records;
pub(crate) mod roles;
mod webauthn;
mod writer;

use crate::migrations::{latest_version, MIGRATIONS};
use crate::rows::{alerts, decode, tags_column};
use crate::{
    scope, ArchiveRecord, AuditHead, AuditQuery, ChainCell, ClientChange, ClientQuery,
    ClientRecord, ClientRow, FactorUse, LoginGuard, MfaConfirm, MfaRow, NewUser, Page,
    PasswordHash, QueryValue, Result, ReviewCampaign, ReviewLine, SessionLimit, SessionRow,
    SessionUpgrade, Store, StoreError, TokenRow, Unique, UserRow, HISTORY_KEPT,
};

pub struct SqliteStore {
    pool: r2d2::Pool<SqliteConnectionManager>,
    /// Every write transaction goes through here (group commit, `sqlite/writer.rs`).
    writer: writer::Writer,
    chain: Arc<ChainCell>,
    /// The database file, beside which a restore keeps its safety copy.
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        create_owner_only(path)?;
        // The writer's connection switches a new file to WAL before the pool opens its
        // connections all at once: done by several of them together, the switch can fail with
        // "database is locked" without waiting.
        let conn = Connection::open(path)?;
        configure(&conn)?;
        let manager = SqliteConnectionManager::file(path).with_init(|c| configure(c));
        let pool = tokio::task::spawn_blocking(move || {
            r2d2::Pool::builder()
                .max_size(8)
                .connection_timeout(Duration::from_secs(10))
                .build(manager)
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))??;
        let chain = Arc::new(ChainCell::default());
        let store = SqliteStore {
            pool,
            writer: writer::Writer::start(conn, chain.clone())?,
            chain,
            path: path.to_owned(),
        };
        store.run(migrate).await?;
        Ok(store)
    }

    /// Runs `work` on a pooled connection off the async executor.
    async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    /// Runs `work` as one atomic write: all of it is committed, durably, before this returns,
    /// or none of it. Writes are committed in groups by one writer thread (`sqlite/writer.rs`).
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &ChainCell) -> Result<T> + Send + 'static,
    {
        self.writer.write(work).await
    }
}

/// Every connection's settings, the writer's and the pool's.
fn configure(c: &Connection) -> rusqlite::Result<()> {
    // FULL: a response is released only after its audit event is on disk.
    // secure_delete: a destroyed client key is overwritten, not left in free pages.
    // cache_size: 32 MiB per connection keeps the audit log's indexes hot; the default 2 MiB
    // made every append to a large log a page-cache miss.
    c.execute_batch(
        "PRAGMA busy_timeout = 5000;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;
         PRAGMA cache_size = -32768;
         PRAGMA temp_store = MEMORY;",
    )
}

/// Creates the database file readable by its owner only; SQLite gives the WAL and shared-memory
/// files the same mode.
fn create_owner_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Config(format!(
            "cannot create the database file {}: {e}",
            path.display()
        ))),
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    migrate_in(&tx)?;
    tx.commit()?;
    Ok(())
}

/// Brings the schema up to date inside the caller's transaction.
fn migrate_in(tx: &Connection) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )?;
    let current: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    if current > latest_version() {
        return Err(StoreError::NewerSchema {
            found: current,
            known: latest_version(),
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sqlite)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at)
             VALUES (?1, ?2, CAST(strftime('%s','now') AS INTEGER) * 1000)",
            params![m.version, m.name],
        )?;
    }
    Ok(())
}

fn map_unique(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(code, Some(msg)) = &e {
        if code.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains("UNIQUE") {
            let which = if msg.contains("users.username") {
                Unique::Username
            } else if msg.contains("clients.uscc") {
                Unique::ClientUscc
            } else if msg.contains("webauthn_credentials.credential_id") {
                Unique::WebauthnCredential
            } else if msg.contains("custom_roles.name") {
                Unique::CustomRole
            } else if msg.contains("erasure_requests.client_id") {
                Unique::ErasurePending
            } else {
                Unique::Other
            };
            return StoreError::Conflict(which);
        }
    }
    StoreError::Sqlite(e)
}

/// Appends `e` to the chain: reads the head, links the event after it, moves the head. The
/// write transaction is IMMEDIATE, so no other writer can interleave.
fn insert_event(tx: &Connection, chain: &ChainCell, e: &AuditEvent) -> Result<()> {
    let key = chain.key()?;
    let (seq, prev): (i64, Vec<u8>) = tx
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let row = StoredEvent::chained(seq + 1, e, &prev, key);
    tx.prepare_cached(
        "INSERT INTO audit_events (seq, id, at, actor_user_id, actor_name, session_ref, source,
             device, action, resource, record_id, fields, outcome, request_id, detail, prev_hash,
             hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        row.seq,
        row.id,
        row.at_ms,
        row.actor_user_id,
        row.actor_name,
        row.session_ref,
        row.source,
        row.device,
        row.action,
        row.resource,
        row.record_id,
        row.fields,
        row.outcome,
        row.request_id,
        row.detail,
        row.prev_hash,
        row.hash,
    ])?;
    tx.prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")?
        .execute(params![row.seq, row.hash])?;
    Ok(())
}

fn event_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<StoredEvent>> {
    Ok(Ok(StoredEvent {
        seq: r.get(0)?,
        id: r.get(1)?,
        at_ms: r.get(2)?,
        actor_user_id: r.get(3)?,
        actor_name: r.get(4)?,
        session_ref: r.get(5)?,
        source: r.get(6)?,
        device: r.get(7)?,
        action: r.get(8)?,
        resource: r.get(9)?,
        record_id: r.get(10)?,
        fields: r.get(11)?,
        outcome: r.get(12)?,
        request_id: r.get(13)?,
        detail: r.get(14)?,
        prev_hash: r.get(15)?,
        hash: r.get(16)?,
    }))
}

const EVENT_COLUMNS: &str = "seq, id, at, actor_user_id, actor_name, session_ref, source, device,
    action, resource, record_id, fields, outcome, request_id, detail, prev_hash, hash";

const USER_COLUMNS: &str = "u.id, u.username, u.role, u.password_hash, u.must_change_password,
    u.disabled, u.created_at, u.password_changed_at,
    EXISTS (SELECT 1 FROM user_mfa m WHERE m.user_id = u.id AND m.confirmed_at IS NOT NULL),
    (SELECT COUNT(*) FROM webauthn_credentials w WHERE w.user_id = u.id),
    EXISTS (SELECT 1 FROM otp_factors o
        WHERE o.user_id = u.id AND o.channel = 'email' AND o.confirmed_at IS NOT NULL),
    EXISTS (SELECT 1 FROM otp_factors o
        WHERE o.user_id = u.id AND o.channel = 'sms' AND o.confirmed_at IS NOT NULL),
    u.team, u.custom_role, (SELECT r.definition FROM custom_roles r WHERE r.name = u.custom_role)";

const TOKEN_COLUMNS: &str = "t.id, t.user_id, t.name, t.secret_hash, t.permissions,
    t.listed_clients, t.created_at, t.expires_at, t.last_used_at, t.last_used_source,
    t.revoked_at, t.revoked_by";

fn token_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<TokenRow>> {
    Ok(decode::token(
        &r.get::<_, String>(0)?,
        &r.get::<_, String>(1)?,
        r.get(2)?,
        r.get(3)?,
        &r.get::<_, String>(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    ))
}

fn user_from(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Result<UserRow>> {
    Ok(decode::user(
        &r.get::<_, String>(at)?,
        &r.get::<_, String>(at + 1)?,
        &r.get::<_, String>(at + 2)?,
        r.get(at + 3)?,
        r.get(at + 4)?,
        r.get(at + 5)?,
        r.get(at + 6)?,
        r.get(at + 7)?,
        r.get(at + 8)?,
        r.get(at + 9)?,
        r.get(at + 10)?,
        r.get(at + 11)?,
        r.get(at + 12)?,
        custom_role_columns(r.get(at + 13)?, r.get(at + 14)?)
            .as_ref()
            .map(|(n, d)| (n.as_str(), d.as_str())),
    ))
}

/// A held custom role's name and definition; a name without a definition cannot happen (the
/// foreign key), so it is treated as no custom role only if both are absent.
fn custom_role_columns(
    name: Option<String>,
    definition: Option<String>,
) -> Option<(String, String)> {
    name.map(|n| (n, definition.unwrap_or_default()))
}

const SESSION_COLUMNS: &str = "s.id_hash, s.user_id, s.created_at, s.last_seen,
    s.absolute_expiry, s.source, s.second_factor_pending, s.factor_at, s.device";

/// A session row from `SESSION_COLUMNS` at the start of the row.
fn session_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<SessionRow>> {
    let user_id = match decode::user_id(&r.get::<_, String>(1)?) {
        Ok(id) => id,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(SessionRow {
        id_hash: r.get(0)?,
        user_id,
        created_at_ms: r.get(2)?,
        last_seen_ms: r.get(3)?,
        absolute_expiry_ms: r.get(4)?,
        source: r.get(5)?,
        second_factor_pending: r.get(6)?,
        factor_at_ms: r.get(7)?,
        device: r.get(8)?,
    }))
}

fn insert_session(tx: &Connection, s: &SessionRow) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO sessions (id_hash, user_id, created_at, last_seen, absolute_expiry, source,
             second_factor_pending, factor_at, device) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        s.id_hash,
        s.user_id.to_string(),
        s.created_at_ms,
        s.last_seen_ms,
        s.absolute_expiry_ms,
        s.source,
        s.second_factor_pending,
        s.factor_at_ms,
        s.device,
    ])?;
    Ok(())
}

/// A completed sign-in: the failure counter starts again, and beyond the limit the oldest
/// signed-in sessions end.
fn signed_in(
    tx: &Connection,
    chain: &ChainCell,
    s: &SessionRow,
    limit: Option<&SessionLimit>,
) -> Result<()> {
    tx.execute(
        "UPDATE users SET last_login_at = ?1, failed_logins = 0, locked_until = NULL
         WHERE id = ?2",
        params![s.created_at_ms, s.user_id.to_string()],
    )?;
    if let Some(limit) = limit {
        let ended = tx.execute(
            "DELETE FROM sessions WHERE user_id = ?1 AND second_factor_pending = 0
                 AND id_hash NOT IN (SELECT id_hash FROM sessions
                     WHERE user_id = ?1 AND second_factor_pending = 0
                     ORDER BY created_at DESC, last_seen DESC LIMIT ?2)",
            params![s.user_id.to_string(), limit.keep.max(1)],
        )?;
        if ended > 0 {
            insert_event(tx, chain, &limit.event)?;
        }
    }
    Ok(())
}

/// Uses a second factor once; false if it was used already (or is not the user's).
fn consume_factor(tx: &Connection, user: UserId, factor: &FactorUse, now_ms: i64) -> Result<bool> {
    let n = match factor {
        FactorUse::Totp { step } => tx.execute(
            "UPDATE user_mfa SET last_step = ?1 WHERE user_id = ?2
                 AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < ?1)",
            params![step, user.to_string()],
        )?,
        FactorUse::RecoveryCode { hash } => tx.execute(
            "UPDATE mfa_recovery_codes SET used_at = ?1
                 WHERE user_id = ?2 AND code_hash = ?3 AND used_at IS NULL",
            params![now_ms, user.to_string(), hash.as_bytes()],
        )?,
        FactorUse::SecurityKey(k) => webauthn::use_key(tx, user, k, now_ms)?,
        FactorUse::Code { hash } => tx.execute(
            "UPDATE otp_codes SET used_at = ?1
                 WHERE user_id = ?2 AND code_hash = ?3 AND used_at IS NULL AND expires_at > ?1",
            params![now_ms, user.to_string(), hash.as_bytes()],
        )?,
    };
    Ok(n == 1)
}

const CLIENT_SELECT: &str = concat!(
    "SELECT c.id, c.name, c.uscc, c.taxpayer_type, c.legal_rep_name,
    c.legal_rep_id_number, c.legal_rep_id_index, c.assigned_accountant, c.created_at,
    c.updated_at, c.version, k.wrapped_dek, c.status, c.team, c.tags, c.notes,
    c.registered_capital, c.tax_authority, k.dek_version, k.previous_dek, k.previous_version
    FROM clients c JOIN client_keys k ON k.client_id = c.id
    WHERE ",
    sqlite_filter!()
);

fn client_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ClientRecord>> {
    Ok(decode::client(decode::ClientColumns {
        id: r.get(0)?,
        name: r.get(1)?,
        uscc: r.get(2)?,
        taxpayer_type: r.get(3)?,
        legal_rep_name: r.get(4)?,
        legal_rep_id_number: r.get(5)?,
        legal_rep_id_index: r.get(6)?,
        assigned_accountant: r.get(7)?,
        created_at_ms: r.get(8)?,
        updated_at_ms: r.get(9)?,
        version: r.get(10)?,
        wrapped_dek: r.get(11)?,
        dek_version: r.get(18)?,
        previous_dek: r.get(19)?,
        previous_version: r.get(20)?,
        status: r.get(12)?,
        team: r.get(13)?,
        tags: r.get(14)?,
        notes: r.get(15)?,
        registered_capital: r.get(16)?,
        tax_authority: r.get(17)?,
    }))
}

fn client_get(conn: &Connection, scope: Scope, id: ClientId) -> Result<Option<ClientRecord>> {
    let (kind, user) = scope::params(scope);
    conn.prepare_cached(&format!("{CLIENT_SELECT} AND c.id = ?3"))?
        .query_row(params![kind, user, id.to_string()], client_from)
        .optional()?
        .transpose()
}

/// Erases a client inside the caller's transaction: its records with their index entries and
/// documents, its engagements and token listings, its row, its data key, and enters it in the
/// erasure ledger.
fn erase_client(tx: &Connection, id: ClientId, at_ms: i64) -> Result<()> {
    let id = id.to_string();
    tx.execute(
        "DELETE FROM record_index WHERE record_id IN
             (SELECT id FROM client_records WHERE client_id = ?1)",
        [&id],
    )?;
    tx.execute(
        "DELETE FROM record_blobs WHERE record_id IN
             (SELECT id FROM client_records WHERE client_id = ?1)",
        [&id],
    )?;
    tx.execute("DELETE FROM client_records WHERE client_id = ?1", [&id])?;
    tx.execute("DELETE FROM client_engagements WHERE client_id = ?1", [&id])?;
    tx.execute("DELETE FROM api_token_clients WHERE client_id = ?1", [&id])?;
    tx.execute("DELETE FROM clients WHERE id = ?1", [&id])?;
    tx.execute("DELETE FROM client_keys WHERE client_id = ?1", [&id])?;
    tx.execute(
        "INSERT INTO client_erasures (client_id, erased_at) VALUES (?1, ?2)
         ON CONFLICT (client_id) DO NOTHING",
        params![id, at_ms],
    )?;
    Ok(())
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<Result<T>>>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn system_key_get_or_insert(
        &self,
        name: &str,
        candidate: WrappedKey,
        now_ms: i64,
    ) -> Result<WrappedKey> {
        let name = name.to_owned();
        self.write(move |tx, _| {
            tx.execute(
                "INSERT INTO system_keys (name, wrapped, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO NOTHING",
                params![name, candidate.as_bytes(), now_ms],
            )?;
            let bytes: Vec<u8> = tx.query_row(
                "SELECT wrapped FROM system_keys WHERE name = ?1",
                [&name],
                |r| r.get(0),
            )?;
            WrappedKey::from_bytes(bytes).map_err(|e| StoreError::corrupt("system_keys", e))
        })
        .await
    }

    async fn database_link(&self) -> Result<Option<crate::DatabaseLink>> {
        Ok(None)
    }

    async fn user_count(&self) -> Result<u64> {
        self.run(|c| {
            let n: i64 = c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    async fn user_create(&self, user: NewUser, event: AuditEvent) -> Result<()> {
        self.write(move |tx, chain| {
            insert_user(tx, &user)?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn user_create_first(&self, user: NewUser, event: AuditEvent) -> Result<bool> {
        self.write(move |tx, chain| {
            let n: i64 = tx.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
            if n > 0 {
                return Ok(false);
            }
            insert_user(tx, &user)?;
            insert_event(tx, chain, &event)?;
            Ok(true)
        })
        .await
    }

    async fn user_by_username(&self, username: &Username) -> Result<Option<UserRow>> {
        let username = username.as_str().to_owned();
        self.run(move |c| {
            c.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE u.username = ?1"
            ))?
            .query_row([username], |r| user_from(r, 0))
            .optional()?
            .transpose()
        })
        .await
    }

    async fn user_set_password(
        &self,
        id: UserId,
        hash: PasswordHash,
        must_change: bool,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            tx.execute(
                "INSERT INTO password_history (user_id, seq, password_hash, replaced_at)
                 SELECT id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM password_history
                             WHERE user_id = ?1), password_hash, ?2
                 FROM users WHERE id = ?1",
                params![id.to_string(), now_ms],
            )?;
            tx.execute(
                "DELETE FROM password_history WHERE user_id = ?1 AND seq <=
                     (SELECT MAX(seq) FROM password_history WHERE user_id = ?1) - ?2",
                params![id.to_string(), HISTORY_KEPT],
            )?;
            let n = tx.execute(
                "UPDATE users SET password_hash = ?1, must_change_password = ?2,
                     password_changed_at = ?3 WHERE id = ?4",
                params![hash.0, must_change, now_ms, id.to_string()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn password_history(&self, user: UserId, last: usize) -> Result<Vec<PasswordHash>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT password_hash FROM password_history WHERE user_id = ?1
                 ORDER BY seq DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![user.to_string(), last as i64], |r| {
                Ok(Ok(PasswordHash(r.get(0)?)))
            })?;
            collect(rows)
        })
        .await
    }

    async fn session_create(
        &self,
        s: SessionRow,
        limit: Option<SessionLimit>,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            insert_session(tx, &s)?;
            if !s.second_factor_pending {
                signed_in(tx, chain, &s, limit.as_ref())?;
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn session_get(&self, id_hash: &[u8]) -> Result<Option<(SessionRow, UserRow)>> {
        let id_hash = id_hash.to_vec();
        self.run(move |c| {
            c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS}, {USER_COLUMNS}
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?1"
            ))?
            .query_row([id_hash], |r| {
                let session = session_from(r)?;
                let user = user_from(r, 9)?;
                Ok((|| Ok((session?, user?)))())
            })
            .optional()?
            .transpose()
        })
        .await
    }

    async fn session_touch(&self, id_hash: &[u8], now_ms: i64) -> Result<()> {
        let id_hash = id_hash.to_vec();
        self.write(move |tx, _| {
            tx.execute(
                "UPDATE sessions SET last_seen = ?1 WHERE id_hash = ?2",
                params![now_ms, id_hash],
            )?;
            Ok(())
        })
        .await
    }

    async fn session_delete(&self, id_hash: &[u8], event: Option<AuditEvent>) -> Result<()> {
        let id_hash = id_hash.to_vec();
        self.write(move |tx, chain| {
            tx.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])?;
            if let Some(event) = &event {
                insert_event(tx, chain, event)?;
            }
            Ok(())
        })
        .await
    }

    async fn session_delete_for_user(&self, user: UserId, keep: Option<&[u8]>) -> Result<()> {
        let keep = keep.map(<[u8]>::to_vec).unwrap_or_default();
        self.write(move |tx, _| {
            tx.execute(
                "DELETE FROM sessions WHERE user_id = ?1 AND id_hash <> ?2",
                params![user.to_string(), keep],
            )?;
            Ok(())
        })
        .await
    }

    async fn session_upgrade(&self, u: SessionUpgrade, event: AuditEvent) -> Result<bool> {
        self.write(move |tx, chain| {
            let user = u.new.user_id;
            if !consume_factor(tx, user, &u.factor, u.new.last_seen_ms)? {
                return Ok(false);
            }
            let n = tx.execute(
                "DELETE FROM sessions WHERE id_hash = ?1 AND user_id = ?2",
                params![u.old_id_hash, user.to_string()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_session(tx, &u.new)?;
            if u.completes_sign_in {
                signed_in(tx, chain, &u.new, u.limit.as_ref())?;
            }
            insert_event(tx, chain, &event)?;
            Ok(true)
        })
        .await
    }

    async fn user_sessions(&self, user: UserId) -> Result<Vec<SessionRow>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.user_id = ?1
                 ORDER BY s.created_at DESC, s.last_seen DESC"
            ))?;
            let rows = stmt.query_map([user.to_string()], session_from)?;
            collect(rows)
        })
        .await
    }

    async fn session_revoke(&self, user: UserId, id_hash: &[u8], event: AuditEvent) -> Result<()> {
        let id_hash = id_hash.to_vec();
        self.write(move |tx, chain| {
            let n = tx.execute(
                "DELETE FROM sessions WHERE id_hash = ?1 AND user_id = ?2",
                params![id_hash, user.to_string()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn mfa_get(&self, user: UserId) -> Result<Option<MfaRow>> {
        self.run(move |c| {
            c.prepare_cached(
                "SELECT m.user_id, m.totp_secret, m.created_at, m.confirmed_at, m.last_step,
                     (SELECT COUNT(*) FROM mfa_recovery_codes r
                      WHERE r.user_id = m.user_id AND r.used_at IS NULL)
                 FROM user_mfa m WHERE m.user_id = ?1",
            )?
            .query_row([user.to_string()], |r| {
                let id: String = r.get(0)?;
                Ok(decode::mfa(
                    &id,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .optional()?
            .transpose()
        })
        .await
    }

    async fn mfa_begin(
        &self,
        user: UserId,
        secret: Sealed,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            let n = tx.execute(
                "INSERT INTO user_mfa (user_id, totp_secret, created_at, confirmed_at, last_step)
                 VALUES (?1, ?2, ?3, NULL, NULL)
                 ON CONFLICT (user_id) DO UPDATE SET totp_secret = excluded.totp_secret,
                     created_at = excluded.created_at, last_step = NULL
                 WHERE user_mfa.confirmed_at IS NULL",
                params![user.to_string(), secret.as_bytes(), now_ms],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict(Unique::MfaEnrolled));
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn mfa_confirm(&self, c: MfaConfirm, event: AuditEvent) -> Result<()> {
        self.write(move |tx, chain| {
            let user = c.user_id.to_string();
            let n = tx.execute(
                "UPDATE user_mfa SET confirmed_at = ?1, last_step = ?2
                 WHERE user_id = ?3 AND confirmed_at IS NULL",
                params![c.confirmed_at_ms, c.step, user],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            tx.execute("DELETE FROM mfa_recovery_codes WHERE user_id = ?1", [&user])?;
            for code in &c.recovery_codes {
                tx.execute(
                    "INSERT INTO mfa_recovery_codes (user_id, code_hash, used_at) VALUES (?1, ?2, NULL)",
                    params![user, code.as_bytes()],
                )?;
            }
            let n = tx.execute(
                "DELETE FROM sessions WHERE id_hash = ?1 AND user_id = ?2",
                params![c.old_id_hash, user],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_session(tx, &c.new)?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn mfa_recovery_replace(
        &self,
        user: UserId,
        codes: Vec<BlindIndex>,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            let user = user.to_string();
            let confirmed: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM user_mfa WHERE user_id = ?1 AND confirmed_at IS NOT NULL",
                    [&user],
                    |r| r.get(0),
                )
                .optional()?;
            if confirmed.is_none() {
                return Err(StoreError::NotFound);
            }
            tx.execute("DELETE FROM mfa_recovery_codes WHERE user_id = ?1", [&user])?;
            for code in &codes {
                tx.execute(
                    "INSERT INTO mfa_recovery_codes (user_id, code_hash, used_at) VALUES (?1, ?2, NULL)",
                    params![user, code.as_bytes()],
                )?;
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn mfa_reset(&self, username: &Username, event: AuditEvent) -> Result<()> {
        let username = username.as_str().to_owned();
        self.write(move |tx, chain| {
            let id: Option<String> = tx
                .query_row(
                    "SELECT id FROM users WHERE username = ?1",
                    [&username],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(id) = id else {
                return Err(StoreError::NotFound);
            };
            tx.execute("DELETE FROM mfa_recovery_codes WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM user_mfa WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM webauthn_credentials WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM otp_codes WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM otp_factors WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", [&id])?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn client_insert(
        &self,
        row: ClientRow,
        key: WrappedKey,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            insert_client(tx, &row, &key)?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn client_get(&self, scope: Scope, id: ClientId) -> Result<Option<ClientRecord>> {
        self.run(move |c| client_get(c, scope, id)).await
    }

    async fn client_get_audited(
        &self,
        scope: Scope,
        id: ClientId,
        event: AuditEvent,
    ) -> Result<Option<ClientRecord>> {
        self.write(move |tx, chain| {
            let found = client_get(tx, scope, id)?;
            if found.is_some() {
                insert_event(tx, chain, &event)?;
            }
            Ok(found)
        })
        .await
    }

    async fn client_list(&self, scope: Scope, page: Page) -> Result<Vec<ClientRecord>> {
        self.run(move |c| {
            let (kind, user) = scope::params(scope);
            let mut stmt = c.prepare_cached(&format!(
                "{CLIENT_SELECT} ORDER BY c.name, c.id LIMIT ?3 OFFSET ?4"
            ))?;
            let rows = stmt.query_map(params![kind, user, page.limit, page.offset], client_from)?;
            collect(rows)
        })
        .await
    }

    async fn client_count(&self, scope: Scope) -> Result<u64> {
        self.client_query_count(scope, ClientQuery::default()).await
    }

    async fn client_insert_many(
        &self,
        rows: Vec<(ClientRow, WrappedKey)>,
        events: Vec<AuditEvent>,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            for (row, key) in &rows {
                insert_client(tx, row, key)?;
            }
            for e in &events {
                insert_event(tx, chain, e)?;
            }
            Ok(())
        })
        .await
    }

    async fn client_engagement(
        &self,
        scope: Scope,
        client: ClientId,
        auditor: UserId,
        engaged: bool,
        granted_by: &str,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        let granted_by = granted_by.to_owned();
        self.write(move |tx, chain| {
            if client_get(tx, scope, client)?.is_none() {
                return Err(StoreError::NotFound);
            }
            let changed = if engaged {
                tx.execute(
                    "INSERT INTO client_engagements (client_id, user_id, granted_by, granted_at)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    params![client.to_string(), auditor.to_string(), granted_by, now_ms],
                )?
            } else {
                tx.execute(
                    "DELETE FROM client_engagements WHERE client_id = ?1 AND user_id = ?2",
                    params![client.to_string(), auditor.to_string()],
                )?
            };
            if changed == 0 && !engaged {
                return Err(StoreError::NotFound);
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn client_usccs_taken(&self, usccs: Vec<String>) -> Result<Vec<String>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached("SELECT uscc FROM clients WHERE uscc = ?1")?;
            let mut taken = Vec::new();
            for u in &usccs {
                if stmt.exists([u])? {
                    taken.push(u.clone());
                }
            }
            Ok(taken)
        })
        .await
    }

    async fn client_query(&self, scope: Scope, query: ClientQuery) -> Result<Vec<ClientRecord>> {
        self.run(move |c| {
            let (kind, user) = scope::params(scope);
            let (clause, values) = query.clause(|n| format!("?{n}"), true);
            let mut stmt = c.prepare_cached(&format!("{CLIENT_SELECT}{clause}"))?;
            let mut all = boxed(vec![
                QueryValue::Int(kind),
                user.map_or(QueryValue::Null, QueryValue::Text),
            ]);
            all.extend(boxed(values));
            let rows = stmt.query_map(rusqlite::params_from_iter(all.iter()), client_from)?;
            collect(rows)
        })
        .await
    }

    async fn client_query_count(&self, scope: Scope, query: ClientQuery) -> Result<u64> {
        self.run(move |c| {
            let (kind, user) = scope::params(scope);
            let (clause, values) = query.clause(|n| format!("?{n}"), false);
            let n: i64 = if kind == 0 && values.is_empty() {
                // The whole firm: SQLite counts the smallest index's entries without looking
                // at a row (0.3 ms at 100,000 clients, against 4 ms through a filter).
                c.prepare_cached("SELECT COUNT(*) FROM clients")?
                    .query_row([], |r| r.get(0))?
            } else {
                let mut all = boxed(vec![
                    QueryValue::Int(kind),
                    user.map_or(QueryValue::Null, QueryValue::Text),
                ]);
                all.extend(boxed(values));
                c.prepare_cached(&format!(
                    "SELECT COUNT(*) FROM clients c WHERE {}{clause}",
                    scope::sqlite_filter_for(kind)
                ))?
                .query_row(rusqlite::params_from_iter(all.iter()), |r| r.get(0))?
            };
            Ok(n.max(0) as u64)
        })
        .await
    }

    async fn client_find_by_id_number(
        &self,
        scope: Scope,
        tokens: &[BlindIndex],
        event: AuditEvent,
    ) -> Result<Vec<ClientRecord>> {
        let tokens: Vec<Vec<u8>> = tokens.iter().map(|t| t.as_bytes().to_vec()).collect();
        self.write(move |tx, chain| {
            let (kind, user) = scope::params(scope);
            let found = if tokens.is_empty() {
                Vec::new()
            } else {
                let marks = (0..tokens.len())
                    .map(|i| format!("?{}", i + 3))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut stmt = tx.prepare_cached(&format!(
                    "{CLIENT_SELECT} AND c.legal_rep_id_index IN ({marks})
                     ORDER BY c.name, c.id LIMIT 100"
                ))?;
                let mut values: Vec<rusqlite::types::Value> = vec![kind.into(), user.into()];
                values.extend(tokens.into_iter().map(rusqlite::types::Value::Blob));
                let rows = stmt.query_map(rusqlite::params_from_iter(values), client_from)?;
                collect(rows)?
            };
            insert_event(tx, chain, &event)?;
            Ok(found)
        })
        .await
    }

    async fn client_update(
        &self,
        scope: Scope,
        id: ClientId,
        expected_version: i64,
        change: ClientChange,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            let current = client_get(tx, scope, id)?.ok_or(StoreError::NotFound)?;
            if current.row.version != expected_version {
                return Err(StoreError::VersionConflict);
            }
            let (sealed, index) = match &change.legal_rep_id_number {
                Some((s, i)) => (Some(s.as_bytes().to_vec()), Some(i.as_bytes().to_vec())),
                None => (None, None),
            };
            let c = &change;
            tx.execute(
                "UPDATE clients SET
                     name = COALESCE(?1, name),
                     uscc = COALESCE(?2, uscc),
                     taxpayer_type = COALESCE(?3, taxpayer_type),
                     legal_rep_name = COALESCE(?4, legal_rep_name),
                     legal_rep_id_number = COALESCE(?5, legal_rep_id_number),
                     legal_rep_id_index = COALESCE(?6, legal_rep_id_index),
                     updated_at = ?7,
                     version = version + 1,
                     status = COALESCE(?10, status),
                     tags = COALESCE(?11, tags),
                     team = CASE WHEN ?12 THEN ?13 ELSE team END,
                     notes = CASE WHEN ?14 THEN ?15 ELSE notes END,
                     registered_capital = CASE WHEN ?16 THEN ?17 ELSE registered_capital END,
                     tax_authority = CASE WHEN ?18 THEN ?19 ELSE tax_authority END,
                     assigned_accountant = CASE WHEN ?20 THEN ?21 ELSE assigned_accountant END
                 WHERE id = ?8 AND version = ?9",
                params![
                    c.name.as_ref().map(|v| v.as_str()),
                    c.uscc.as_ref().map(|v| v.as_str()),
                    c.taxpayer_type.map(|v| v.as_str()),
                    c.legal_rep_name.as_ref().map(|v| v.as_str()),
                    sealed,
                    index,
                    c.updated_at_ms,
                    id.to_string(),
                    expected_version,
                    c.status.map(|v| v.as_str()),
                    c.tags.as_ref().map(tags_column),
                    c.team.is_some(),
                    c.team.as_ref().and_then(|v| v.as_ref().map(|t| t.as_str())),
                    c.notes.is_some(),
                    c.notes
                        .as_ref()
                        .and_then(|v| v.as_ref().map(|n| n.as_bytes())),
                    c.registered_capital.is_some(),
                    c.registered_capital.and_then(|v| v.map(|f| f.as_fen())),
                    c.tax_authority.is_some(),
                    c.tax_authority
                        .as_ref()
                        .and_then(|v| v.as_ref().map(|t| t.as_str())),
                    c.assigned_accountant.is_some(),
                    c.assigned_accountant.and_then(|v| v.map(|u| u.to_string())),
                ],
            )
            .map_err(map_unique)?;
            data_keys::count_encryptions(
                tx,
                crate::KeyHolder::Client,
                &id.to_string(),
                crate::data_keys::client_change_encryptions(&change),
            )?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn client_delete(&self, scope: Scope, id: ClientId, event: AuditEvent) -> Result<()> {
        self.write(move |tx, chain| {
            if client_get(tx, scope, id)?.is_none() {
                return Err(StoreError::NotFound);
            }
            erase_client(tx, id, event.at_ms)?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn client_erasures(&self) -> Result<Vec<(ClientId, i64)>> {
        self.run(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT client_id, erased_at FROM client_erasures ORDER BY erased_at, client_id",
            )?;
            let rows = stmt.query_map([], |r| {
                let id: String = r.get(0)?;
                let at: i64 = r.get(1)?;
                Ok(decode::client_id(&id).map(|id| (id, at)))
            })?;
            collect(rows)
        })
        .await
    }

    async fn audit_append_batch(&self, events: Vec<AuditEvent>) -> Result<()> {
        self.write(move |tx, chain| {
            for e in &events {
                insert_event(tx, chain, e)?;
            }
            Ok(())
        })
        .await
    }

    async fn audit_append(&self, event: AuditEvent) -> Result<()> {
        self.write(move |tx, chain| insert_event(tx, chain, &event))
            .await
    }

    async fn audit_events(&self, after: i64, limit: u32) -> Result<Vec<StoredEvent>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![after, limit], event_from)?;
            collect(rows)
        })
        .await
    }

    fn install_audit_chain_key(&self, key: Arc<AuditChainKey>) {
        self.chain.install(key);
    }

    async fn audit_head(&self) -> Result<AuditHead> {
        self.run(|c| {
            Ok(c.query_row(
                "SELECT h.seq, h.hash, COALESCE((SELECT MAX(seq) FROM audit_events), 0) FROM audit_head h WHERE h.id = 1",
                [],
                |r| {
                    Ok(AuditHead {
                        seq: r.get(0)?,
                        hash: r.get(1)?,
                        max_event_seq: r.get(2)?,
                    })
                },
            )?)
        })
        .await
    }

    async fn audit_seq_of_hash(&self, hash: &[u8]) -> Result<Option<i64>> {
        let hash = hash.to_vec();
        self.run(move |c| {
            Ok(
                c.prepare_cached("SELECT seq FROM audit_events WHERE hash = ?1")?
                    .query_row([hash], |r| r.get(0))
                    .optional()?,
            )
        })
        .await
    }

    async fn audit_checkpoint_add(&self, cp: Checkpoint) -> Result<bool> {
        self.write(move |tx, _| {
            let n = tx.execute(
                "INSERT INTO audit_checkpoints (seq, hash, at, public_key, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (seq) DO NOTHING",
                params![cp.seq, cp.hash, cp.at_ms, cp.public_key, cp.signature],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn audit_search(&self, query: &AuditQuery) -> Result<Vec<StoredEvent>> {
        let (clause, values) = query.clause(|n| format!("?{n}"));
        let limit = query.limit.clamp(1, 10_000);
        self.run(move |c| {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM audit_events {clause}
                 ORDER BY at DESC, seq DESC LIMIT {limit}"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let params = boxed(values);
            let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), event_from)?;
            collect(rows)
        })
        .await
    }

    async fn audit_set_retention(&self, retention_ms: i64, event: AuditEvent) -> Result<bool> {
        self.write(move |tx, chain| {
            let n = tx.execute(
                "UPDATE audit_settings SET retention_ms = ?1 WHERE id = 1 AND retention_ms <> ?1",
                [retention_ms],
            )?;
            if n == 1 {
                insert_event(tx, chain, &event)?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn audit_archivable(&self, cutoff_ms: i64) -> Result<Option<(i64, i64)>> {
        self.run(move |c| {
            let first: Option<i64> =
                c.query_row("SELECT MIN(seq) FROM audit_events", [], |r| r.get(0))?;
            let Some(first) = first else { return Ok(None) };
            let young: Option<i64> = c.query_row(
                "SELECT MIN(seq) FROM audit_events WHERE at >= ?1",
                [cutoff_ms],
                |r| r.get(0),
            )?;
            let last = match young {
                Some(s) => s - 1,
                None => c.query_row("SELECT MAX(seq) FROM audit_events", [], |r| r.get(0))?,
            };
            Ok((last >= first).then_some((first, last)))
        })
        .await
    }

    async fn audit_archive_commit(&self, a: ArchiveRecord, event: AuditEvent) -> Result<u64> {
        self.write(move |tx, chain| {
            tx.execute(
                "INSERT INTO audit_archives (last_seq, first_seq, last_hash, sha256, created_at, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![a.last_seq, a.first_seq, a.last_hash, a.sha256, a.created_at_ms, a.signature],
            )?;
            let n = tx.execute(
                "DELETE FROM audit_events WHERE seq BETWEEN ?1 AND ?2",
                params![a.first_seq, a.last_seq],
            )?;
            insert_event(tx, chain, &event)?;
            Ok(n as u64)
        })
        .await
    }

    async fn audit_archives(&self) -> Result<Vec<ArchiveRecord>> {
        self.run(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT first_seq, last_seq, last_hash, sha256, created_at, signature
                 FROM audit_archives ORDER BY last_seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Ok(ArchiveRecord {
                    first_seq: r.get(0)?,
                    last_seq: r.get(1)?,
                    last_hash: r.get(2)?,
                    sha256: r.get(3)?,
                    created_at_ms: r.get(4)?,
                    signature: r.get(5)?,
                }))
            })?;
            collect(rows)
        })
        .await
    }

    async fn audit_count(&self, query: &AuditQuery) -> Result<u64> {
        let mut q = query.clone();
        q.before = None;
        let (clause, values) = q.clause(|n| format!("?{n}"));
        self.run(move |c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT COUNT(*) FROM audit_events {clause}"))?;
            let params = boxed(values);
            let n: i64 = stmt.query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0))?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    async fn monitor_position(&self) -> Result<i64> {
        self.run(|c| {
            Ok(
                c.query_row("SELECT last_seq FROM monitor_state WHERE id = 1", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    async fn monitor_advance(&self, from: i64, to: i64) -> Result<bool> {
        self.write(move |tx, _| {
            let n = tx.execute(
                "UPDATE monitor_state SET last_seq = ?1 WHERE id = 1 AND last_seq = ?2",
                params![to, from],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn alert_raise(
        &self,
        alert: Alert,
        dedup_key: String,
        event: AuditEvent,
    ) -> Result<bool> {
        self.write(move |tx, chain| {
            let n = tx.execute(
                "INSERT INTO alerts (id, dedup_key, at, rule, severity, user_id, username, source,
                     summary, event_seq, responses, status, updated_at, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'open', ?3, NULL)
                 ON CONFLICT (dedup_key) DO NOTHING",
                params![
                    alert.id,
                    dedup_key,
                    alert.at_ms,
                    alert.rule,
                    alert.severity.as_str(),
                    alert.user_id,
                    alert.username,
                    alert.source,
                    alert.summary,
                    alert.event_seq,
                    alerts::responses_json(&alert),
                ],
            )?;
            if n == 1 {
                insert_event(tx, chain, &event)?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn alerts(&self, status: Option<AlertStatus>, limit: u32) -> Result<Vec<AlertRecord>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{} WHERE (?1 IS NULL OR status = ?1) ORDER BY at DESC LIMIT ?2",
                alerts::SELECT
            ))?;
            let rows = stmt.query_map(params![status.map(AlertStatus::as_str), limit], |r| {
                Ok(alerts::decode(alerts::AlertColumns {
                    id: r.get(0)?,
                    at_ms: r.get(1)?,
                    rule: r.get(2)?,
                    severity: r.get(3)?,
                    user_id: r.get(4)?,
                    username: r.get(5)?,
                    source: r.get(6)?,
                    summary: r.get(7)?,
                    event_seq: r.get(8)?,
                    responses: r.get(9)?,
                    status: r.get(10)?,
                    updated_at_ms: r.get(11)?,
                    updated_by: r.get(12)?,
                }))
            })?;
            collect(rows)
        })
        .await
    }

    async fn alert_set_status(
        &self,
        id: &str,
        status: AlertStatus,
        by: &str,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        let (id, by) = (id.to_owned(), by.to_owned());
        self.write(move |tx, chain| {
            let n = tx.execute(
                "UPDATE alerts SET status = ?1, updated_at = ?2, updated_by = ?3 WHERE id = ?4",
                params![status.as_str(), now_ms, by, id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn user_set_disabled(
        &self,
        username: &Username,
        disabled: bool,
        event: AuditEvent,
    ) -> Result<()> {
        let username = username.as_str().to_owned();
        self.write(move |tx, chain| {
            let n = tx.execute(
                "UPDATE users SET disabled = ?1, failed_logins = 0, locked_until = NULL
                 WHERE username = ?2",
                params![disabled, username],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            if disabled {
                tx.execute(
                    "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?1)",
                    [&username],
                )?;
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn users_dormant(&self, before_ms: i64) -> Result<Vec<Username>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT username FROM users
                 WHERE disabled = 0 AND COALESCE(last_login_at, created_at) < ?1 ORDER BY username",
            )?;
            let rows = stmt.query_map([before_ms], |r| {
                let name: String = r.get(0)?;
                Ok(Username::parse(&name).map_err(|e| StoreError::corrupt("username", e)))
            })?;
            collect(rows)
        })
        .await
    }

    async fn login_guard(&self, username: &Username) -> Result<LoginGuard> {
        let username = username.as_str().to_owned();
        self.run(move |c| {
            Ok(c.prepare_cached(
                "SELECT failed_logins, locked_until FROM users WHERE username = ?1",
            )?
            .query_row([username], |r| {
                Ok(LoginGuard {
                    failures: r.get(0)?,
                    locked_until_ms: r.get(1)?,
                })
            })
            .optional()?
            .unwrap_or_default())
        })
        .await
    }

    async fn login_failed(
        &self,
        username: &Username,
        seen: LoginGuard,
        next: LoginGuard,
        event: AuditEvent,
    ) -> Result<bool> {
        let username = username.as_str().to_owned();
        self.write(move |tx, chain| {
            let changed = tx.execute(
                "UPDATE users SET failed_logins = ?1, locked_until = ?2
                 WHERE username = ?3 AND failed_logins = ?4 AND locked_until IS ?5",
                params![
                    next.failures,
                    next.locked_until_ms,
                    username,
                    seen.failures,
                    seen.locked_until_ms
                ],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            insert_event(tx, chain, &event)?;
            Ok(true)
        })
        .await
    }

    async fn users_enabled(&self) -> Result<Vec<UserRow>> {
        self.run(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE u.disabled = 0 ORDER BY u.username"
            ))?;
            let rows = stmt.query_map([], |r| user_from(r, 0))?;
            collect(rows)
        })
        .await
    }

    async fn token_create(&self, token: TokenRow, event: AuditEvent) -> Result<()> {
        self.write(move |tx, chain| {
            tx.execute(
                "INSERT INTO api_tokens (id, user_id, name, secret_hash, permissions, listed_clients,
                     created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    token.id.to_string(),
                    token.user_id.to_string(),
                    token.name,
                    token.secret_hash,
                    token.permissions.join(","),
                    token.listed_clients,
                    token.created_at_ms,
                    token.expires_at_ms
                ],
            )?;
            let mut listed = tx.prepare_cached(
                "INSERT INTO api_token_clients (token_id, client_id) VALUES (?1, ?2)",
            )?;
            for client in &token.clients {
                listed.execute(params![token.id.to_string(), client.to_string()])?;
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn token_by_secret(&self, secret_hash: &[u8]) -> Result<Option<(TokenRow, UserRow)>> {
        let secret_hash = secret_hash.to_vec();
        self.run(move |c| {
            c.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS}
                 FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.secret_hash = ?1"
            ))?
            .query_row([secret_hash], |r| {
                let token = token_from(r)?;
                let user = user_from(r, 12)?;
                Ok((|| Ok((token?, user?)))())
            })
            .optional()?
            .transpose()
        })
        .await
    }

    async fn tokens_of(&self, user: UserId) -> Result<Vec<TokenRow>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.user_id = ?1
                 ORDER BY t.created_at DESC, t.id"
            ))?;
            let mut tokens = collect(stmt.query_map([user.to_string()], token_from)?)?;
            let mut listed = c.prepare_cached(
                "SELECT client_id FROM api_token_clients WHERE token_id = ?1 ORDER BY client_id",
            )?;
            for t in &mut tokens {
                let ids = listed.query_map([t.id.to_string()], |r| r.get::<_, String>(0))?;
                for id in ids {
                    t.clients.push(decode::client_id(&id?)?);
                }
            }
            Ok(tokens)
        })
        .await
    }

    async fn token_revoke(
        &self,
        id: TokenId,
        owner: Option<UserId>,
        at_ms: i64,
        by: String,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            let n = tx.execute(
                "UPDATE api_tokens SET revoked_at = ?1, revoked_by = ?2
                 WHERE id = ?3 AND revoked_at IS NULL AND (?4 IS NULL OR user_id = ?4)",
                params![at_ms, by, id.to_string(), owner.map(|o| o.to_string())],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn token_used(
        &self,
        id: TokenId,
        at_ms: i64,
        source: Option<String>,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            tx.execute(
                "UPDATE api_tokens SET last_used_at = ?1, last_used_source = ?2 WHERE id = ?3",
                params![at_ms, source, id.to_string()],
            )?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn review_create(
        &self,
        c: ReviewCampaign,
        lines: Vec<ReviewLine>,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            tx.execute(
                "INSERT INTO review_campaigns (id, created_at, due_at, created_by) VALUES (?1, ?2, ?3, ?4)",
                params![c.id, c.created_at_ms, c.due_at_ms, c.created_by],
            )?;
            for l in &lines {
                tx.execute(
                    "INSERT INTO review_lines (campaign_id, username, role, permissions, client_scope)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![l.campaign_id, l.username, l.role, l.permissions, l.client_scope],
                )?;
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn review_campaigns(&self) -> Result<Vec<ReviewCampaign>> {
        self.run(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, created_at, due_at, created_by FROM review_campaigns ORDER BY created_at",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Ok(ReviewCampaign {
                    id: r.get(0)?,
                    created_at_ms: r.get(1)?,
                    due_at_ms: r.get(2)?,
                    created_by: r.get(3)?,
                }))
            })?;
            collect(rows)
        })
        .await
    }

    async fn review_lines(&self, campaign_id: &str) -> Result<Vec<ReviewLine>> {
        let id = campaign_id.to_owned();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT campaign_id, username, role, permissions, client_scope, decision, decided_by,
                     decided_at, reason FROM review_lines WHERE campaign_id = ?1 ORDER BY username",
            )?;
            let rows = stmt.query_map([id], |r| {
                Ok(Ok(ReviewLine {
                    campaign_id: r.get(0)?,
                    username: r.get(1)?,
                    role: r.get(2)?,
                    permissions: r.get(3)?,
                    client_scope: r.get(4)?,
                    decision: r.get(5)?,
                    decided_by: r.get(6)?,
                    decided_at_ms: r.get(7)?,
                    reason: r.get(8)?,
                }))
            })?;
            collect(rows)
        })
        .await
    }

    async fn review_decide(
        &self,
        campaign_id: &str,
        username: &Username,
        decision: &str,
        by: &str,
        at_ms: i64,
        reason: &str,
        event: AuditEvent,
    ) -> Result<()> {
        let (id, user, decision, by, reason) = (
            campaign_id.to_owned(),
            username.as_str().to_owned(),
            decision.to_owned(),
            by.to_owned(),
            reason.to_owned(),
        );
        self.write(move |tx, chain| {
            let n = tx.execute(
                "UPDATE review_lines SET decision = ?1, decided_by = ?2, decided_at = ?3, reason = ?4
                 WHERE campaign_id = ?5 AND username = ?6 AND decision IS NULL",
                params![decision, by, at_ms, reason, id, user],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            if decision == "revoked" {
                tx.execute("UPDATE users SET disabled = 1 WHERE username = ?1", [&user])?;
                tx.execute(
                    "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?1)",
                    [&user],
                )?;
            }
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn user_revoke_sessions(&self, username: &Username, event: AuditEvent) -> Result<()> {
        let username = username.as_str().to_owned();
        self.write(move |tx, chain| {
            tx.execute(
                "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?1)",
                [&username],
            )?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn honeytoken_add(&self, client: ClientId, now_ms: i64, event: AuditEvent) -> Result<()> {
        self.write(move |tx, chain| {
            tx.execute(
                "INSERT INTO honeytokens (client_id, created_at) VALUES (?1, ?2)
                 ON CONFLICT (client_id) DO NOTHING",
                params![client.to_string(), now_ms],
            )?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn honeytokens(&self) -> Result<Vec<String>> {
        self.run(|c| {
            let mut stmt =
                c.prepare_cached("SELECT client_id FROM honeytokens ORDER BY client_id")?;
            let rows = stmt.query_map([], |r| Ok(Ok(r.get(0)?)))?;
            collect(rows)
        })
        .await
    }

    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>> {
        self.run(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, hash, at, public_key, signature FROM audit_checkpoints ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Ok(Checkpoint {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                    at_ms: r.get(2)?,
                    public_key: r.get(3)?,
                    signature: r.get(4)?,
                }))
            })?;
            collect(rows)
        })
        .await
    }

    async fn schedule_lease_take(
        &self,
        name: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.write(move |tx, _| {
            let n = tx.execute(
                "INSERT INTO schedule_leases (name, owner, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
                 WHERE schedule_leases.expires_at < ?4",
                params![name, owner, until_ms, now_ms],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn schedule_lease_renew(&self, name: &str, owner: &str, until_ms: i64) -> Result<bool> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.write(move |tx, _| {
            let n = tx.execute(
                "UPDATE schedule_leases SET expires_at = ?3 WHERE name = ?1 AND owner = ?2",
                params![name, owner, until_ms],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn schedule_lease_release(&self, name: &str, owner: &str) -> Result<()> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.write(move |tx, _| {
            tx.execute(
                "DELETE FROM schedule_leases WHERE name = ?1 AND owner = ?2",
                params![name, owner],
            )?;
            Ok(())
        })
        .await
    }

    async fn backup_run_record(&self, r: crate::BackupRun, event: AuditEvent) -> Result<()> {
        self.write(move |tx, chain| {
            tx.execute(
                "INSERT INTO backup_runs (id, kind, trigger, started_at, finished_at, outcome,
                     backup_id, backup_created_at, bytes, target, error, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    r.id,
                    r.kind,
                    r.trigger,
                    r.started_at_ms,
                    r.finished_at_ms,
                    r.outcome,
                    r.backup_id,
                    r.backup_created_at_ms,
                    r.bytes,
                    r.target,
                    r.error,
                    r.detail
                ],
            )?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn backup_runs(&self, kind: Option<&str>, limit: u32) -> Result<Vec<crate::BackupRun>> {
        let kind = kind.map(str::to_owned);
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, kind, trigger, started_at, finished_at, outcome, backup_id,
                     backup_created_at, bytes, target, error, detail
                 FROM backup_runs WHERE (?1 IS NULL OR kind = ?1)
                 ORDER BY started_at DESC, id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![kind, limit], |r| {
                Ok(Ok(crate::BackupRun {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    trigger: r.get(2)?,
                    started_at_ms: r.get(3)?,
                    finished_at_ms: r.get(4)?,
                    outcome: r.get(5)?,
                    backup_id: r.get(6)?,
                    backup_created_at_ms: r.get(7)?,
                    bytes: r.get(8)?,
                    target: r.get(9)?,
                    error: r.get(10)?,
                    detail: r.get(11)?,
                }))
            })?;
            collect(rows)
        })
        .await
    }

    async fn backup_snapshot(&self) -> Result<crate::Snapshot> {
        backup::snapshot(self).await
    }

    async fn restore_target_occupied(&self) -> Result<Vec<&'static str>> {
        self.run(|c| backup::occupied(c)).await
    }

    async fn restore(
        &self,
        mode: crate::RestoreMode,
        feed: crate::RestoreFeed,
    ) -> Result<crate::RestoreOutcome> {
        backup::restore(self, mode, feed).await
    }
}

/// Inserts a client and its first data key (version 1).
fn insert_client(tx: &Connection, row: &ClientRow, key: &WrappedKey) -> Result<()> {
    let id = row.id.to_string();
    tx.execute(
        "INSERT INTO client_keys (client_id, wrapped_dek, created_at, dek_version, encryptions)
         VALUES (?1, ?2, ?3, 1, ?4)",
        params![
            id,
            key.as_bytes(),
            row.created_at_ms,
            crate::data_keys::client_insert_encryptions(row)
        ],
    )?;
    tx.execute(
        "INSERT INTO clients (id, name, uscc, taxpayer_type, legal_rep_name,
             legal_rep_id_number, legal_rep_id_index, assigned_accountant, created_at,
             updated_at, version, status, team, tags, notes, registered_capital,
             tax_authority)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
             ?17)",
        params![
            id,
            row.name.as_str(),
            row.uscc.as_str(),
            row.taxpayer_type.as_str(),
            row.legal_rep_name.as_str(),
            row.legal_rep_id_number.as_bytes(),
            row.legal_rep_id_index.as_bytes(),
            row.assigned_accountant.map(|u| u.to_string()),
            row.created_at_ms,
            row.updated_at_ms,
            row.version,
            row.status.as_str(),
            row.team.as_ref().map(|t| t.as_str()),
            tags_column(&row.tags),
            row.notes.as_ref().map(|n| n.as_bytes()),
            row.registered_capital.map(|f| f.as_fen()),
            row.tax_authority.as_ref().map(|t| t.as_str()),
        ],
    )
    .map_err(map_unique)?;
    Ok(())
}

fn insert_user(tx: &Connection, u: &NewUser) -> Result<()> {
    tx.execute(
        "INSERT INTO users (id, username, role, password_hash, must_change_password, disabled,
             created_at, password_changed_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6)",
        params![
            u.id.to_string(),
            u.username.as_str(),
            u.role.as_str(),
            u.password_hash.0,
            u.must_change_password,
            u.created_at_ms,
        ],
    )
    .map_err(map_unique)?;
    Ok(())
}

fn boxed(values: Vec<QueryValue>) -> Vec<Box<dyn rusqlite::ToSql>> {
    values
        .into_iter()
        .map(|v| match v {
            QueryValue::Text(t) => Box::new(t) as Box<dyn rusqlite::ToSql>,
            QueryValue::Int(i) => Box::new(i),
            QueryValue::Bytes(b) => Box::new(b),
            QueryValue::Null => Box::new(Option::<i64>::None),
        })
        .collect()
}
