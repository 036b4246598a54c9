//! The shared store: several stateless `zhangfang serve` nodes on one PostgreSQL database.
//! Sessions, keys and the audit log live here, so any node serves any request.

use crate::scope::postgres_filter;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};
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
mod roles;
mod transport;
mod webauthn;

use crate::migrations::{latest_version, MIGRATIONS};
use crate::rows::{alerts, decode, tags_column};
use crate::{
    scope, ArchiveRecord, AuditHead, AuditQuery, ChainCell, ClientChange, ClientQuery,
    ClientRecord, ClientRow, FactorUse, LoginGuard, MfaConfirm, MfaRow, NewUser, Page,
    PasswordHash, QueryValue, Result, ReviewCampaign, ReviewLine, SessionLimit, SessionRow,
    SessionUpgrade, Store, StoreError, TokenRow, Unique, UserRow, HISTORY_KEPT,
};

/// Host and port of every server the URL names.
fn describe_server(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Serialises schema changes and first-user creation between nodes starting together.
const MIGRATION_LOCK: i64 = 0x7a68_616e_6766;
const FIRST_USER_LOCK: i64 = 0x7a68_616e_6767;

pub struct PgStore {
    pool: Pool,
    chain: ChainCell,
    transport: transport::Transport,
    /// Host and port as the URL names them, for the posture check.
    server: String,
    local: bool,
}

impl PgStore {
    /// Connects to `url` (a `postgres://` URL; `?options=-csearch_path%3Dschema` selects a
    /// schema) and brings the schema up to date.
    /// Across the network only TLS with a verified certificate will do (`postgres/transport.rs`):
    /// `sslmode=verify-full&sslrootcert=/path/ca.pem`.
    pub async fn connect(url: &str) -> Result<Self> {
        let transport::Connection {
            config,
            transport,
            local,
        } = transport::parse(url)?;
        let server = describe_server(&config);
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &transport {
            transport::Transport::Plain { .. } => {
                Manager::from_config(config, NoTls, manager_config)
            }
            transport::Transport::Verified { root } => Manager::from_config(
                config,
                tokio_postgres_rustls::MakeRustlsConnect::new(transport::client_config(
                    root.as_ref(),
                )?),
                manager_config,
            ),
        };
        let pool = Pool::builder(manager)
            .max_size(16)
            .build()
            .map_err(|e| StoreError::PostgresPool(e.to_string()))?;
        let store = PgStore {
            pool,
            chain: ChainCell::default(),
            transport,
            server,
            local,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(pg) => StoreError::Postgres(pg),
            other => StoreError::PostgresPool(other.to_string()),
        })
    }

    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        migrate_in(&tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Brings the schema of the connection's search path up to date inside the caller's
/// transaction, which holds the migration lock.
async fn migrate_in(tx: &impl GenericClient) -> Result<()> {
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    if current > latest_version() {
        return Err(StoreError::NewerSchema {
            found: current,
            known: latest_version(),
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.postgres).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at)
             VALUES ($1, $2, (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT)",
            &[&m.version, &m.name],
        )
        .await?;
    }
    Ok(())
}

fn map_unique(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        if *db.code() == SqlState::UNIQUE_VIOLATION {
            return StoreError::Conflict(match db.constraint() {
                Some("users_username_key") => Unique::Username,
                Some("clients_uscc_key") => Unique::ClientUscc,
                Some("webauthn_credentials_pkey") => Unique::WebauthnCredential,
                Some("custom_roles_pkey") => Unique::CustomRole,
                Some("erasure_requests_pending") => Unique::ErasurePending,
                _ => Unique::Other,
            });
        }
    }
    StoreError::Postgres(e)
}

/// Appends `e` to the chain inside the caller's transaction. The head row is locked until that
/// transaction ends, so nodes writing at once take turns and the chain stays one line.
async fn insert_event(c: &impl GenericClient, chain: &ChainCell, e: &AuditEvent) -> Result<()> {
    let key = chain.key()?;
    let head = c
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
        .await?;
    let head = c.query_one(&head, &[]).await?;
    let (seq, prev): (i64, Vec<u8>) = (head.try_get(0)?, head.try_get(1)?);
    let row = StoredEvent::chained(seq + 1, e, &prev, key);
    let stmt = c
        .prepare_cached(
            "INSERT INTO audit_events (seq, id, at, actor_user_id, actor_name, session_ref, source,
                 device, action, resource, record_id, fields, outcome, request_id, detail,
                 prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .await?;
    c.execute(
        &stmt,
        &[
            &row.seq,
            &row.id,
            &row.at_ms,
            &row.actor_user_id,
            &row.actor_name,
            &row.session_ref,
            &row.source,
            &row.device,
            &row.action,
            &row.resource,
            &row.record_id,
            &row.fields,
            &row.outcome,
            &row.request_id,
            &row.detail,
            &row.prev_hash,
            &row.hash,
        ],
    )
    .await?;
    let update = c
        .prepare_cached("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .await?;
    c.execute(&update, &[&row.seq, &row.hash]).await?;
    Ok(())
}

const EVENT_COLUMNS: &str = "seq, id, at, actor_user_id, actor_name, session_ref, source, device,
    action, resource, record_id, fields, outcome, request_id, detail, prev_hash, hash";

fn event_from(r: &Row) -> Result<StoredEvent> {
    Ok(StoredEvent {
        seq: r.try_get(0)?,
        id: r.try_get(1)?,
        at_ms: r.try_get(2)?,
        actor_user_id: r.try_get(3)?,
        actor_name: r.try_get(4)?,
        session_ref: r.try_get(5)?,
        source: r.try_get(6)?,
        device: r.try_get(7)?,
        action: r.try_get(8)?,
        resource: r.try_get(9)?,
        record_id: r.try_get(10)?,
        fields: r.try_get(11)?,
        outcome: r.try_get(12)?,
        request_id: r.try_get(13)?,
        detail: r.try_get(14)?,
        prev_hash: r.try_get(15)?,
        hash: r.try_get(16)?,
    })
}

async fn insert_user(c: &impl GenericClient, u: &NewUser) -> Result<()> {
    c.execute(
        "INSERT INTO users (id, username, role, password_hash, must_change_password, disabled,
             created_at, password_changed_at) VALUES ($1, $2, $3, $4, $5, FALSE, $6, $6)",
        &[
            &u.id.to_string(),
            &u.username.as_str(),
            &u.role.as_str(),
            &u.password_hash.0,
            &u.must_change_password,
            &u.created_at_ms,
        ],
    )
    .await
    .map_err(map_unique)?;
    Ok(())
}

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

fn token_from(r: &Row) -> Result<TokenRow> {
    decode::token(
        r.try_get::<_, &str>(0)?,
        r.try_get::<_, &str>(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get::<_, &str>(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
        r.try_get(7)?,
        r.try_get(8)?,
        r.try_get(9)?,
        r.try_get(10)?,
        r.try_get(11)?,
    )
}

fn user_from(r: &Row, at: usize) -> Result<UserRow> {
    decode::user(
        r.try_get::<_, &str>(at)?,
        r.try_get::<_, &str>(at + 1)?,
        r.try_get::<_, &str>(at + 2)?,
        r.try_get(at + 3)?,
        r.try_get(at + 4)?,
        r.try_get(at + 5)?,
        r.try_get(at + 6)?,
        r.try_get(at + 7)?,
        r.try_get(at + 8)?,
        r.try_get(at + 9)?,
        r.try_get(at + 10)?,
        r.try_get(at + 11)?,
        r.try_get(at + 12)?,
        r.try_get::<_, Option<&str>>(at + 13)?
            .map(|name| {
                Ok::<_, StoreError>((
                    name,
                    r.try_get::<_, Option<&str>>(at + 14)?.unwrap_or_default(),
                ))
            })
            .transpose()?,
    )
}

const SESSION_COLUMNS: &str = "s.id_hash, s.user_id, s.created_at, s.last_seen,
    s.absolute_expiry, s.source, s.second_factor_pending, s.factor_at, s.device";

/// A session row from `SESSION_COLUMNS` at the start of the row.
fn session_from(r: &Row) -> Result<SessionRow> {
    Ok(SessionRow {
        id_hash: r.try_get(0)?,
        user_id: decode::user_id(r.try_get::<_, &str>(1)?)?,
        created_at_ms: r.try_get(2)?,
        last_seen_ms: r.try_get(3)?,
        absolute_expiry_ms: r.try_get(4)?,
        source: r.try_get(5)?,
        second_factor_pending: r.try_get(6)?,
        factor_at_ms: r.try_get(7)?,
        device: r.try_get(8)?,
    })
}

async fn insert_session(c: &impl GenericClient, s: &SessionRow) -> Result<()> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO sessions (id_hash, user_id, created_at, last_seen, absolute_expiry,
                 source, second_factor_pending, factor_at, device)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await?;
    c.execute(
        &stmt,
        &[
            &s.id_hash,
            &s.user_id.to_string(),
            &s.created_at_ms,
            &s.last_seen_ms,
            &s.absolute_expiry_ms,
            &s.source,
            &s.second_factor_pending,
            &s.factor_at_ms,
            &s.device,
        ],
    )
    .await?;
    Ok(())
}

/// A completed sign-in: the failure counter starts again, and beyond the limit the oldest
/// signed-in sessions end.
async fn signed_in(
    c: &impl GenericClient,
    chain: &ChainCell,
    s: &SessionRow,
    limit: Option<&SessionLimit>,
) -> Result<()> {
    let user = s.user_id.to_string();
    c.execute(
        "UPDATE users SET last_login_at = $1, failed_logins = 0, locked_until = NULL WHERE id = $2",
        &[&s.created_at_ms, &user],
    )
    .await?;
    if let Some(limit) = limit {
        let keep = i64::from(limit.keep.max(1));
        let ended = c
            .execute(
                "DELETE FROM sessions WHERE user_id = $1 AND NOT second_factor_pending
                     AND id_hash NOT IN (SELECT id_hash FROM sessions
                         WHERE user_id = $1 AND NOT second_factor_pending
                         ORDER BY created_at DESC, last_seen DESC LIMIT $2)",
                &[&user, &keep],
            )
            .await?;
        if ended > 0 {
            insert_event(c, chain, &limit.event).await?;
        }
    }
    Ok(())
}

/// Uses a second factor once; false if it was used already (or is not the user's).
async fn consume_factor(
    c: &impl GenericClient,
    user: UserId,
    factor: &FactorUse,
    now_ms: i64,
) -> Result<bool> {
    let user = user.to_string();
    let n = match factor {
        FactorUse::Totp { step } => {
            c.execute(
                "UPDATE user_mfa SET last_step = $1 WHERE user_id = $2
                     AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $1)",
                &[step, &user],
            )
            .await?
        }
        FactorUse::RecoveryCode { hash } => {
            c.execute(
                "UPDATE mfa_recovery_codes SET used_at = $1
                     WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
                &[&now_ms, &user, &hash.as_bytes()],
            )
            .await?
        }
        FactorUse::SecurityKey(k) => webauthn::use_key(c, &user, k, now_ms).await?,
        FactorUse::Code { hash } => {
            c.execute(
                "UPDATE otp_codes SET used_at = $1
                     WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL AND expires_at > $1",
                &[&now_ms, &user, &hash.as_bytes()],
            )
            .await?
        }
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
    postgres_filter!()
);

fn client_from(r: &Row) -> Result<ClientRecord> {
    decode::client(decode::ClientColumns {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        uscc: r.try_get(2)?,
        taxpayer_type: r.try_get(3)?,
        legal_rep_name: r.try_get(4)?,
        legal_rep_id_number: r.try_get(5)?,
        legal_rep_id_index: r.try_get(6)?,
        assigned_accountant: r.try_get(7)?,
        created_at_ms: r.try_get(8)?,
        updated_at_ms: r.try_get(9)?,
        version: r.try_get(10)?,
        wrapped_dek: r.try_get(11)?,
        dek_version: r.try_get(18)?,
        previous_dek: r.try_get(19)?,
        previous_version: r.try_get(20)?,
        status: r.try_get(12)?,
        team: r.try_get(13)?,
        tags: r.try_get(14)?,
        notes: r.try_get(15)?,
        registered_capital: r.try_get(16)?,
        tax_authority: r.try_get(17)?,
    })
}

async fn client_get(
    c: &impl GenericClient,
    scope: Scope,
    id: ClientId,
) -> Result<Option<ClientRecord>> {
    let (kind, user) = scope::params(scope);
    let stmt = c
        .prepare_cached(&format!("{CLIENT_SELECT} AND c.id = $3"))
        .await?;
    c.query_opt(&stmt, &[&kind, &user, &id.to_string()])
        .await?
        .as_ref()
        .map(client_from)
        .transpose()
}

/// Erases a client inside the caller's transaction: its records with their index entries and
/// documents, its engagements and token listings, its row, its data key, and enters it in the
/// erasure ledger.
async fn erase_client(tx: &impl GenericClient, id: ClientId, at_ms: i64) -> Result<()> {
    let id = id.to_string();
    for sql in [
        "DELETE FROM record_index WHERE record_id IN
             (SELECT id FROM client_records WHERE client_id = $1)",
        "DELETE FROM record_blobs WHERE record_id IN
             (SELECT id FROM client_records WHERE client_id = $1)",
        "DELETE FROM client_records WHERE client_id = $1",
        "DELETE FROM client_engagements WHERE client_id = $1",
        "DELETE FROM api_token_clients WHERE client_id = $1",
        "DELETE FROM clients WHERE id = $1",
        "DELETE FROM client_keys WHERE client_id = $1",
    ] {
        tx.execute(sql, &[&id]).await?;
    }
    tx.execute(
        "INSERT INTO client_erasures (client_id, erased_at) VALUES ($1, $2)
         ON CONFLICT (client_id) DO NOTHING",
        &[&id, &at_ms],
    )
    .await?;
    Ok(())
}

/// Inserts a client and its first data key (version 1).
pub(crate) async fn insert_client(
    tx: &impl GenericClient,
    row: &ClientRow,
    key: &WrappedKey,
) -> Result<()> {
    let id = row.id.to_string();
    tx.execute(
        "INSERT INTO client_keys (client_id, wrapped_dek, created_at, dek_version, encryptions)
         VALUES ($1, $2, $3, 1, $4)",
        &[
            &id,
            &key.as_bytes(),
            &row.created_at_ms,
            &crate::data_keys::client_insert_encryptions(row),
        ],
    )
    .await?;
    tx.execute(
        "INSERT INTO clients (id, name, uscc, taxpayer_type, legal_rep_name,
             legal_rep_id_number, legal_rep_id_index, assigned_accountant, created_at,
             updated_at, version, status, team, tags, notes, registered_capital, tax_authority)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        &[
            &id,
            &row.name.as_str(),
            &row.uscc.as_str(),
            &row.taxpayer_type.as_str(),
            &row.legal_rep_name.as_str(),
            &row.legal_rep_id_number.as_bytes(),
            &row.legal_rep_id_index.as_bytes(),
            &row.assigned_accountant.map(|u| u.to_string()),
            &row.created_at_ms,
            &row.updated_at_ms,
            &row.version,
            &row.status.as_str(),
            &row.team.as_ref().map(|t| t.as_str()),
            &tags_column(&row.tags),
            &row.notes.as_ref().map(|n| n.as_bytes()),
            &row.registered_capital.map(|f| f.as_fen()),
            &row.tax_authority.as_ref().map(|t| t.as_str()),
        ],
    )
    .await
    .map_err(map_unique)?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn system_key_get_or_insert(
        &self,
        name: &str,
        candidate: WrappedKey,
        now_ms: i64,
    ) -> Result<WrappedKey> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO system_keys (name, wrapped, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
            &[&name, &candidate.as_bytes(), &now_ms],
        )
        .await?;
        let bytes: Vec<u8> = c
            .query_one("SELECT wrapped FROM system_keys WHERE name = $1", &[&name])
            .await?
            .try_get(0)?;
        WrappedKey::from_bytes(bytes).map_err(|e| StoreError::corrupt("system_keys", e))
    }

    async fn database_link(&self) -> Result<Option<crate::DatabaseLink>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        let tls = match row {
            Some(r) if r.try_get::<_, bool>(0)? => Some(format!(
                "{} {}",
                r.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
                r.try_get::<_, Option<String>>(2)?.unwrap_or_default()
            )),
            _ => None,
        };
        Ok(Some(crate::DatabaseLink {
            server: self.server.clone(),
            local: self.local,
            verified: tls.is_some()
                && matches!(self.transport, transport::Transport::Verified { .. }),
            tls,
        }))
    }

    async fn user_count(&self) -> Result<u64> {
        let n: i64 = self
            .client()
            .await?
            .query_one("SELECT COUNT(*) FROM users", &[])
            .await?
            .try_get(0)?;
        Ok(n.max(0) as u64)
    }

    async fn user_create(&self, user: NewUser, event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        insert_user(&tx, &user).await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn user_create_first(&self, user: NewUser, event: AuditEvent) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FIRST_USER_LOCK])
            .await?;
        let n: i64 = tx
            .query_one("SELECT COUNT(*) FROM users", &[])
            .await?
            .try_get(0)?;
        if n > 0 {
            return Ok(false);
        }
        insert_user(&tx, &user).await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn user_by_username(&self, username: &Username) -> Result<Option<UserRow>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE u.username = $1"
            ))
            .await?;
        c.query_opt(&stmt, &[&username.as_str()])
            .await?
            .map(|r| user_from(&r, 0))
            .transpose()
    }

    async fn user_set_password(
        &self,
        id: UserId,
        hash: PasswordHash,
        must_change: bool,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "INSERT INTO password_history (user_id, seq, password_hash, replaced_at)
             SELECT id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM password_history
                         WHERE user_id = $1), password_hash, $2
             FROM users WHERE id = $1",
            &[&id.to_string(), &now_ms],
        )
        .await?;
        tx.execute(
            "DELETE FROM password_history WHERE user_id = $1 AND seq <=
                 (SELECT MAX(seq) FROM password_history WHERE user_id = $1) - $2",
            &[&id.to_string(), &HISTORY_KEPT],
        )
        .await?;
        let n = tx
            .execute(
                "UPDATE users SET password_hash = $1, must_change_password = $2,
                     password_changed_at = $3 WHERE id = $4",
                &[&hash.0, &must_change, &now_ms, &id.to_string()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn password_history(&self, user: UserId, last: usize) -> Result<Vec<PasswordHash>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT password_hash FROM password_history WHERE user_id = $1
                 ORDER BY seq DESC LIMIT $2",
                &[&user.to_string(), &(last as i64)],
            )
            .await?;
        rows.iter()
            .map(|r| Ok(PasswordHash(r.try_get(0)?)))
            .collect()
    }

    async fn session_create(
        &self,
        s: SessionRow,
        limit: Option<SessionLimit>,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        insert_session(&tx, &s).await?;
        if !s.second_factor_pending {
            signed_in(&tx, &self.chain, &s, limit.as_ref()).await?;
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_get(&self, id_hash: &[u8]) -> Result<Option<(SessionRow, UserRow)>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS}, {USER_COLUMNS}
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1"
            ))
            .await?;
        let Some(r) = c.query_opt(&stmt, &[&id_hash]).await? else {
            return Ok(None);
        };
        Ok(Some((session_from(&r)?, user_from(&r, 9)?)))
    }

    async fn session_touch(&self, id_hash: &[u8], now_ms: i64) -> Result<()> {
        self.client()
            .await?
            .execute(
                "UPDATE sessions SET last_seen = $1 WHERE id_hash = $2",
                &[&now_ms, &id_hash],
            )
            .await?;
        Ok(())
    }

    async fn session_delete(&self, id_hash: &[u8], event: Option<AuditEvent>) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute("DELETE FROM sessions WHERE id_hash = $1", &[&id_hash])
            .await?;
        if let Some(event) = &event {
            insert_event(&tx, &self.chain, event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn session_delete_for_user(&self, user: UserId, keep: Option<&[u8]>) -> Result<()> {
        let keep = keep.map(<[u8]>::to_vec).unwrap_or_default();
        self.client()
            .await?
            .execute(
                "DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2",
                &[&user.to_string(), &keep],
            )
            .await?;
        Ok(())
    }

    async fn session_upgrade(&self, u: SessionUpgrade, event: AuditEvent) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let user = u.new.user_id;
        if !consume_factor(&tx, user, &u.factor, u.new.last_seen_ms).await? {
            return Ok(false);
        }
        let n = tx
            .execute(
                "DELETE FROM sessions WHERE id_hash = $1 AND user_id = $2",
                &[&u.old_id_hash, &user.to_string()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        insert_session(&tx, &u.new).await?;
        if u.completes_sign_in {
            signed_in(&tx, &self.chain, &u.new, u.limit.as_ref()).await?;
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn user_sessions(&self, user: UserId) -> Result<Vec<SessionRow>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.user_id = $1
                 ORDER BY s.created_at DESC, s.last_seen DESC"
            ))
            .await?;
        c.query(&stmt, &[&user.to_string()])
            .await?
            .iter()
            .map(session_from)
            .collect()
    }

    async fn session_revoke(&self, user: UserId, id_hash: &[u8], event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "DELETE FROM sessions WHERE id_hash = $1 AND user_id = $2",
                &[&id_hash, &user.to_string()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mfa_get(&self, user: UserId) -> Result<Option<MfaRow>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT m.user_id, m.totp_secret, m.created_at, m.confirmed_at, m.last_step,
                     (SELECT COUNT(*) FROM mfa_recovery_codes r
                      WHERE r.user_id = m.user_id AND r.used_at IS NULL)
                 FROM user_mfa m WHERE m.user_id = $1",
            )
            .await?;
        c.query_opt(&stmt, &[&user.to_string()])
            .await?
            .map(|r| {
                decode::mfa(
                    r.try_get::<_, &str>(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                    r.try_get(5)?,
                )
            })
            .transpose()
    }

    async fn mfa_begin(
        &self,
        user: UserId,
        secret: Sealed,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "INSERT INTO user_mfa (user_id, totp_secret, created_at, confirmed_at, last_step)
                 VALUES ($1, $2, $3, NULL, NULL)
                 ON CONFLICT (user_id) DO UPDATE SET totp_secret = excluded.totp_secret,
                     created_at = excluded.created_at, last_step = NULL
                 WHERE user_mfa.confirmed_at IS NULL",
                &[&user.to_string(), &secret.as_bytes(), &now_ms],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Conflict(Unique::MfaEnrolled));
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mfa_confirm(&self, m: MfaConfirm, event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let user = m.user_id.to_string();
        let n = tx
            .execute(
                "UPDATE user_mfa SET confirmed_at = $1, last_step = $2
                 WHERE user_id = $3 AND confirmed_at IS NULL",
                &[&m.confirmed_at_ms, &m.step, &user],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.execute(
            "DELETE FROM mfa_recovery_codes WHERE user_id = $1",
            &[&user],
        )
        .await?;
        for code in &m.recovery_codes {
            tx.execute(
                "INSERT INTO mfa_recovery_codes (user_id, code_hash, used_at) VALUES ($1, $2, NULL)",
                &[&user, &code.as_bytes()],
            )
            .await?;
        }
        let n = tx
            .execute(
                "DELETE FROM sessions WHERE id_hash = $1 AND user_id = $2",
                &[&m.old_id_hash, &user],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        insert_session(&tx, &m.new).await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mfa_recovery_replace(
        &self,
        user: UserId,
        codes: Vec<BlindIndex>,
        event: AuditEvent,
    ) -> Result<()> {
        let user = user.to_string();
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Locks the authenticator's row, so a reset cannot interleave.
        if tx
            .query_opt(
                "SELECT 1 FROM user_mfa WHERE user_id = $1 AND confirmed_at IS NOT NULL FOR UPDATE",
                &[&user],
            )
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound);
        }
        tx.execute(
            "DELETE FROM mfa_recovery_codes WHERE user_id = $1",
            &[&user],
        )
        .await?;
        for code in &codes {
            tx.execute(
                "INSERT INTO mfa_recovery_codes (user_id, code_hash, used_at) VALUES ($1, $2, NULL)",
                &[&user, &code.as_bytes()],
            )
            .await?;
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mfa_reset(&self, username: &Username, event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT id FROM users WHERE username = $1",
                &[&username.as_str()],
            )
            .await?
        else {
            return Err(StoreError::NotFound);
        };
        let id: String = row.try_get(0)?;
        tx.execute("DELETE FROM mfa_recovery_codes WHERE user_id = $1", &[&id])
            .await?;
        tx.execute("DELETE FROM user_mfa WHERE user_id = $1", &[&id])
            .await?;
        tx.execute(
            "DELETE FROM webauthn_credentials WHERE user_id = $1",
            &[&id],
        )
        .await?;
        tx.execute("DELETE FROM otp_codes WHERE user_id = $1", &[&id])
            .await?;
        tx.execute("DELETE FROM otp_factors WHERE user_id = $1", &[&id])
            .await?;
        tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&id])
            .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn client_insert(
        &self,
        row: ClientRow,
        key: WrappedKey,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        insert_client(&tx, &row, &key).await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn client_get(&self, scope: Scope, id: ClientId) -> Result<Option<ClientRecord>> {
        client_get(&self.client().await?, scope, id).await
    }

    async fn client_get_audited(
        &self,
        scope: Scope,
        id: ClientId,
        event: AuditEvent,
    ) -> Result<Option<ClientRecord>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let found = client_get(&tx, scope, id).await?;
        if found.is_some() {
            insert_event(&tx, &self.chain, &event).await?;
        }
        tx.commit().await?;
        Ok(found)
    }

    async fn client_list(&self, scope: Scope, page: Page) -> Result<Vec<ClientRecord>> {
        let c = self.client().await?;
        let (kind, user) = scope::params(scope);
        let stmt = c
            .prepare_cached(&format!(
                "{CLIENT_SELECT} ORDER BY c.name, c.id LIMIT $3 OFFSET $4"
            ))
            .await?;
        let rows = c
            .query(
                &stmt,
                &[
                    &kind,
                    &user,
                    &i64::from(page.limit),
                    &i64::from(page.offset),
                ],
            )
            .await?;
        rows.iter().map(client_from).collect()
    }

    async fn client_count(&self, scope: Scope) -> Result<u64> {
        let (kind, user) = scope::params(scope);
        let n: i64 = self
            .client()
            .await?
            .query_one(
                concat!(
                    "SELECT COUNT(*) FROM clients c
                 WHERE ",
                    postgres_filter!()
                ),
                &[&kind, &user],
            )
            .await?
            .try_get(0)?;
        Ok(n.max(0) as u64)
    }

    async fn client_insert_many(
        &self,
        rows: Vec<(ClientRow, WrappedKey)>,
        events: Vec<AuditEvent>,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        for (row, key) in &rows {
            insert_client(&tx, row, key).await?;
        }
        for e in &events {
            insert_event(&tx, &self.chain, e).await?;
        }
        tx.commit().await?;
        Ok(())
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
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if client_get(&tx, scope, client).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let changed = if engaged {
            tx.execute(
                "INSERT INTO client_engagements (client_id, user_id, granted_by, granted_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[
                    &client.to_string(),
                    &auditor.to_string(),
                    &granted_by,
                    &now_ms,
                ],
            )
            .await?
        } else {
            tx.execute(
                "DELETE FROM client_engagements WHERE client_id = $1 AND user_id = $2",
                &[&client.to_string(), &auditor.to_string()],
            )
            .await?
        };
        if changed == 0 && !engaged {
            return Err(StoreError::NotFound);
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn client_usccs_taken(&self, usccs: Vec<String>) -> Result<Vec<String>> {
        let rows = self
            .client()
            .await?
            .query("SELECT uscc FROM clients WHERE uscc = ANY($1)", &[&usccs])
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn client_query(&self, scope: Scope, query: ClientQuery) -> Result<Vec<ClientRecord>> {
        let (kind, user) = scope::params(scope);
        let (clause, values) = query.clause(|n| format!("${n}"), true);
        let mut params = boxed(vec![
            QueryValue::Int(kind),
            user.map_or(QueryValue::Null, QueryValue::Text),
        ]);
        params.extend(boxed(values));
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!("{CLIENT_SELECT}{clause}"))
            .await?;
        let rows = c.query(&stmt, &refs(&params)).await?;
        rows.iter().map(client_from).collect()
    }

    async fn client_query_count(&self, scope: Scope, query: ClientQuery) -> Result<u64> {
        let (kind, user) = scope::params(scope);
        let (clause, values) = query.clause(|n| format!("${n}"), false);
        let mut params = boxed(vec![
            QueryValue::Int(kind),
            user.map_or(QueryValue::Null, QueryValue::Text),
        ]);
        params.extend(boxed(values));
        let n: i64 = self
            .client()
            .await?
            .query_one(
                &format!(
                    concat!(
                        "SELECT COUNT(*) FROM clients c
                     WHERE ",
                        postgres_filter!(),
                        "{clause}"
                    ),
                    clause = clause
                ),
                &refs(&params),
            )
            .await?
            .try_get(0)?;
        Ok(n.max(0) as u64)
    }

    async fn client_find_by_id_number(
        &self,
        scope: Scope,
        tokens: &[BlindIndex],
        event: AuditEvent,
    ) -> Result<Vec<ClientRecord>> {
        let tokens: Vec<&[u8]> = tokens.iter().map(|t| t.as_bytes()).collect();
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let (kind, user) = scope::params(scope);
        let stmt = tx
            .prepare_cached(&format!(
                "{CLIENT_SELECT} AND c.legal_rep_id_index = ANY($3)
                 ORDER BY c.name, c.id LIMIT 100"
            ))
            .await?;
        let rows = tx.query(&stmt, &[&kind, &user, &tokens]).await?;
        let found = rows.iter().map(client_from).collect::<Result<Vec<_>>>()?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(found)
    }

    async fn client_update(
        &self,
        scope: Scope,
        id: ClientId,
        expected_version: i64,
        change: ClientChange,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let current = client_get(&tx, scope, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if current.row.version != expected_version {
            return Err(StoreError::VersionConflict);
        }
        let (sealed, index) = match &change.legal_rep_id_number {
            Some((s, i)) => (Some(s.as_bytes().to_vec()), Some(i.as_bytes().to_vec())),
            None => (None, None),
        };
        let c = &change;
        let n = tx
            .execute(
                "UPDATE clients SET
                     name = COALESCE($1, name),
                     uscc = COALESCE($2, uscc),
                     taxpayer_type = COALESCE($3, taxpayer_type),
                     legal_rep_name = COALESCE($4, legal_rep_name),
                     legal_rep_id_number = COALESCE($5, legal_rep_id_number),
                     legal_rep_id_index = COALESCE($6, legal_rep_id_index),
                     updated_at = $7,
                     version = version + 1,
                     status = COALESCE($10, status),
                     tags = COALESCE($11, tags),
                     team = CASE WHEN $12 THEN $13 ELSE team END,
                     notes = CASE WHEN $14 THEN $15 ELSE notes END,
                     registered_capital = CASE WHEN $16 THEN $17 ELSE registered_capital END,
                     tax_authority = CASE WHEN $18 THEN $19 ELSE tax_authority END,
                     assigned_accountant = CASE WHEN $20 THEN $21 ELSE assigned_accountant END
                 WHERE id = $8 AND version = $9",
                &[
                    &c.name.as_ref().map(|v| v.as_str()),
                    &c.uscc.as_ref().map(|v| v.as_str()),
                    &c.taxpayer_type.map(|v| v.as_str()),
                    &c.legal_rep_name.as_ref().map(|v| v.as_str()),
                    &sealed,
                    &index,
                    &c.updated_at_ms,
                    &id.to_string(),
                    &expected_version,
                    &c.status.map(|v| v.as_str()),
                    &c.tags.as_ref().map(tags_column),
                    &c.team.is_some(),
                    &c.team.as_ref().and_then(|v| v.as_ref().map(|t| t.as_str())),
                    &c.notes.is_some(),
                    &c.notes
                        .as_ref()
                        .and_then(|v| v.as_ref().map(|n| n.as_bytes())),
                    &c.registered_capital.is_some(),
                    &c.registered_capital.and_then(|v| v.map(|f| f.as_fen())),
                    &c.tax_authority.is_some(),
                    &c.tax_authority
                        .as_ref()
                        .and_then(|v| v.as_ref().map(|t| t.as_str())),
                    &c.assigned_accountant.is_some(),
                    &c.assigned_accountant.and_then(|v| v.map(|u| u.to_string())),
                ],
            )
            .await
            .map_err(map_unique)?;
        if n == 0 {
            return Err(StoreError::VersionConflict);
        }
        data_keys::count_encryptions(
            &tx,
            crate::KeyHolder::Client,
            &id.to_string(),
            crate::data_keys::client_change_encryptions(&change),
        )
        .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn client_delete(&self, scope: Scope, id: ClientId, event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if client_get(&tx, scope, id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        erase_client(&tx, id, event.at_ms).await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn client_erasures(&self) -> Result<Vec<(ClientId, i64)>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT client_id, erased_at FROM client_erasures ORDER BY erased_at, client_id",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((decode::client_id(r.try_get(0)?)?, r.try_get(1)?)))
            .collect()
    }

    async fn audit_append_batch(&self, events: Vec<AuditEvent>) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        for e in &events {
            insert_event(&tx, &self.chain, e).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn audit_append(&self, event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_events(&self, after: i64, limit: u32) -> Result<Vec<StoredEvent>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
            ))
            .await?;
        let rows = c.query(&stmt, &[&after, &i64::from(limit)]).await?;
        rows.iter().map(event_from).collect()
    }

    fn install_audit_chain_key(&self, key: std::sync::Arc<AuditChainKey>) {
        self.chain.install(key);
    }

    async fn audit_head(&self) -> Result<AuditHead> {
        let r = self
            .client()
            .await?
            .query_one(
                "SELECT h.seq, h.hash, COALESCE((SELECT MAX(seq) FROM audit_events), 0)::BIGINT FROM audit_head h WHERE h.id = 1",
                &[],
            )
            .await?;
        Ok(AuditHead {
            seq: r.try_get(0)?,
            hash: r.try_get(1)?,
            max_event_seq: r.try_get(2)?,
        })
    }

    async fn audit_seq_of_hash(&self, hash: &[u8]) -> Result<Option<i64>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT seq FROM audit_events WHERE hash = $1")
            .await?;
        Ok(c.query_opt(&stmt, &[&hash]).await?.map(|r| r.get(0)))
    }

    async fn audit_checkpoint_add(&self, cp: Checkpoint) -> Result<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO audit_checkpoints (seq, hash, at, public_key, signature)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING",
                &[&cp.seq, &cp.hash, &cp.at_ms, &cp.public_key, &cp.signature],
            )
            .await?;
        Ok(n == 1)
    }

    async fn audit_search(&self, query: &AuditQuery) -> Result<Vec<StoredEvent>> {
        let (clause, values) = query.clause(|n| format!("${n}"));
        let limit = query.limit.clamp(1, 10_000);
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events {clause}
             ORDER BY at DESC, seq DESC LIMIT {limit}"
        );
        let params = boxed(values);
        let refs = refs(&params);
        let c = self.client().await?;
        let stmt = c.prepare_cached(&sql).await?;
        let rows = c.query(&stmt, &refs).await?;
        rows.iter().map(event_from).collect()
    }

    async fn audit_set_retention(&self, retention_ms: i64, event: AuditEvent) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "UPDATE audit_settings SET retention_ms = $1 WHERE id = 1 AND retention_ms <> $1",
                &[&retention_ms],
            )
            .await?;
        if n == 1 {
            insert_event(&tx, &self.chain, &event).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn audit_archivable(&self, cutoff_ms: i64) -> Result<Option<(i64, i64)>> {
        let c = self.client().await?;
        let r = c
            .query_one(
                "SELECT (SELECT MIN(seq) FROM audit_events),
                        (SELECT MIN(seq) FROM audit_events WHERE at >= $1),
                        (SELECT MAX(seq) FROM audit_events)",
                &[&cutoff_ms],
            )
            .await?;
        let (first, young, max): (Option<i64>, Option<i64>, Option<i64>) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        let (Some(first), Some(max)) = (first, max) else {
            return Ok(None);
        };
        let last = young.map_or(max, |s| s - 1);
        Ok((last >= first).then_some((first, last)))
    }

    async fn audit_archive_commit(&self, a: ArchiveRecord, event: AuditEvent) -> Result<u64> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "INSERT INTO audit_archives (last_seq, first_seq, last_hash, sha256, created_at, signature)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&a.last_seq, &a.first_seq, &a.last_hash, &a.sha256, &a.created_at_ms, &a.signature],
        )
        .await?;
        let n = tx
            .execute(
                "DELETE FROM audit_events WHERE seq BETWEEN $1 AND $2",
                &[&a.first_seq, &a.last_seq],
            )
            .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn audit_archives(&self) -> Result<Vec<ArchiveRecord>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT first_seq, last_seq, last_hash, sha256, created_at, signature
                 FROM audit_archives ORDER BY last_seq",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ArchiveRecord {
                    first_seq: r.try_get(0)?,
                    last_seq: r.try_get(1)?,
                    last_hash: r.try_get(2)?,
                    sha256: r.try_get(3)?,
                    created_at_ms: r.try_get(4)?,
                    signature: r.try_get(5)?,
                })
            })
            .collect()
    }

    async fn audit_count(&self, query: &AuditQuery) -> Result<u64> {
        let mut q = query.clone();
        q.before = None;
        let (clause, values) = q.clause(|n| format!("${n}"));
        let params = boxed(values);
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!("SELECT COUNT(*) FROM audit_events {clause}"))
            .await?;
        let n: i64 = c.query_one(&stmt, &refs(&params)).await?.try_get(0)?;
        Ok(n.max(0) as u64)
    }

    async fn monitor_position(&self) -> Result<i64> {
        Ok(self
            .client()
            .await?
            .query_one("SELECT last_seq FROM monitor_state WHERE id = 1", &[])
            .await?
            .try_get(0)?)
    }

    async fn monitor_advance(&self, from: i64, to: i64) -> Result<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE monitor_state SET last_seq = $1 WHERE id = 1 AND last_seq = $2",
                &[&to, &from],
            )
            .await?;
        Ok(n == 1)
    }

    async fn alert_raise(
        &self,
        alert: Alert,
        dedup_key: String,
        event: AuditEvent,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "INSERT INTO alerts (id, dedup_key, at, rule, severity, user_id, username, source,
                     summary, event_seq, responses, status, updated_at, updated_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'open', $3, NULL)
                 ON CONFLICT (dedup_key) DO NOTHING",
                &[
                    &alert.id,
                    &dedup_key,
                    &alert.at_ms,
                    &alert.rule,
                    &alert.severity.as_str(),
                    &alert.user_id,
                    &alert.username,
                    &alert.source,
                    &alert.summary,
                    &alert.event_seq,
                    &alerts::responses_json(&alert),
                ],
            )
            .await?;
        if n == 1 {
            insert_event(&tx, &self.chain, &event).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn alerts(&self, status: Option<AlertStatus>, limit: u32) -> Result<Vec<AlertRecord>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "{} WHERE ($1::TEXT IS NULL OR status = $1) ORDER BY at DESC LIMIT $2",
                    alerts::SELECT
                ),
                &[&status.map(AlertStatus::as_str), &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                alerts::decode(alerts::AlertColumns {
                    id: r.try_get(0)?,
                    at_ms: r.try_get(1)?,
                    rule: r.try_get(2)?,
                    severity: r.try_get(3)?,
                    user_id: r.try_get(4)?,
                    username: r.try_get(5)?,
                    source: r.try_get(6)?,
                    summary: r.try_get(7)?,
                    event_seq: r.try_get(8)?,
                    responses: r.try_get(9)?,
                    status: r.try_get(10)?,
                    updated_at_ms: r.try_get(11)?,
                    updated_by: r.try_get(12)?,
                })
            })
            .collect()
    }

    async fn alert_set_status(
        &self,
        id: &str,
        status: AlertStatus,
        by: &str,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "UPDATE alerts SET status = $1, updated_at = $2, updated_by = $3 WHERE id = $4",
                &[&status.as_str(), &now_ms, &by, &id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn user_set_disabled(
        &self,
        username: &Username,
        disabled: bool,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "UPDATE users SET disabled = $1, failed_logins = 0, locked_until = NULL
                 WHERE username = $2",
                &[&disabled, &username.as_str()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        if disabled {
            tx.execute(
                "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = $1)",
                &[&username.as_str()],
            )
            .await?;
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn users_dormant(&self, before_ms: i64) -> Result<Vec<Username>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT username FROM users
                 WHERE NOT disabled AND COALESCE(last_login_at, created_at) < $1 ORDER BY username",
                &[&before_ms],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let name: &str = r.try_get(0)?;
                Username::parse(name).map_err(|e| StoreError::corrupt("username", e))
            })
            .collect()
    }

    async fn login_guard(&self, username: &Username) -> Result<LoginGuard> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT failed_logins::BIGINT, locked_until FROM users WHERE username = $1",
                &[&username.as_str()],
            )
            .await?;
        Ok(match row {
            Some(r) => LoginGuard {
                failures: r.try_get(0)?,
                locked_until_ms: r.try_get(1)?,
            },
            None => LoginGuard::default(),
        })
    }

    async fn login_failed(
        &self,
        username: &Username,
        seen: LoginGuard,
        next: LoginGuard,
        event: AuditEvent,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let clamp = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
        let changed = tx
            .execute(
                "UPDATE users SET failed_logins = $1, locked_until = $2
                 WHERE username = $3 AND failed_logins = $4
                   AND locked_until IS NOT DISTINCT FROM $5",
                &[
                    &clamp(next.failures),
                    &next.locked_until_ms,
                    &username.as_str(),
                    &clamp(seen.failures),
                    &seen.locked_until_ms,
                ],
            )
            .await?;
        if changed == 0 {
            return Ok(false);
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn users_enabled(&self) -> Result<Vec<UserRow>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {USER_COLUMNS} FROM users u WHERE NOT u.disabled ORDER BY u.username"
                ),
                &[],
            )
            .await?;
        rows.iter().map(|r| user_from(r, 0)).collect()
    }

    async fn token_create(&self, token: TokenRow, event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let id = token.id.to_string();
        tx.execute(
            "INSERT INTO api_tokens (id, user_id, name, secret_hash, permissions, listed_clients,
                 created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &id,
                &token.user_id.to_string(),
                &token.name,
                &token.secret_hash,
                &token.permissions.join(","),
                &token.listed_clients,
                &token.created_at_ms,
                &token.expires_at_ms,
            ],
        )
        .await?;
        for client in &token.clients {
            tx.execute(
                "INSERT INTO api_token_clients (token_id, client_id) VALUES ($1, $2)",
                &[&id, &client.to_string()],
            )
            .await?;
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token_by_secret(&self, secret_hash: &[u8]) -> Result<Option<(TokenRow, UserRow)>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS}
                 FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.secret_hash = $1"
            ))
            .await?;
        let Some(r) = c.query_opt(&stmt, &[&secret_hash]).await? else {
            return Ok(None);
        };
        Ok(Some((token_from(&r)?, user_from(&r, 12)?)))
    }

    async fn tokens_of(&self, user: UserId) -> Result<Vec<TokenRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.user_id = $1
                     ORDER BY t.created_at DESC, t.id"
                ),
                &[&user.to_string()],
            )
            .await?;
        let mut tokens = rows.iter().map(token_from).collect::<Result<Vec<_>>>()?;
        for t in &mut tokens {
            for r in c
                .query(
                    "SELECT client_id FROM api_token_clients WHERE token_id = $1 ORDER BY client_id",
                    &[&t.id.to_string()],
                )
                .await?
            {
                t.clients.push(decode::client_id(r.try_get(0)?)?);
            }
        }
        Ok(tokens)
    }

    async fn token_revoke(
        &self,
        id: TokenId,
        owner: Option<UserId>,
        at_ms: i64,
        by: String,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "UPDATE api_tokens SET revoked_at = $1, revoked_by = $2
                 WHERE id = $3 AND revoked_at IS NULL AND ($4::TEXT IS NULL OR user_id = $4)",
                &[&at_ms, &by, &id.to_string(), &owner.map(|o| o.to_string())],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token_used(
        &self,
        id: TokenId,
        at_ms: i64,
        source: Option<String>,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "UPDATE api_tokens SET last_used_at = $1, last_used_source = $2 WHERE id = $3",
            &[&at_ms, &source, &id.to_string()],
        )
        .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn review_create(
        &self,
        c: ReviewCampaign,
        lines: Vec<ReviewLine>,
        event: AuditEvent,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO review_campaigns (id, created_at, due_at, created_by) VALUES ($1, $2, $3, $4)",
            &[&c.id, &c.created_at_ms, &c.due_at_ms, &c.created_by],
        )
        .await?;
        for l in &lines {
            tx.execute(
                "INSERT INTO review_lines (campaign_id, username, role, permissions, client_scope)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &l.campaign_id,
                    &l.username,
                    &l.role,
                    &l.permissions,
                    &l.client_scope,
                ],
            )
            .await?;
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn review_campaigns(&self) -> Result<Vec<ReviewCampaign>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, created_at, due_at, created_by FROM review_campaigns ORDER BY created_at",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ReviewCampaign {
                    id: r.try_get(0)?,
                    created_at_ms: r.try_get(1)?,
                    due_at_ms: r.try_get(2)?,
                    created_by: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn review_lines(&self, campaign_id: &str) -> Result<Vec<ReviewLine>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT campaign_id, username, role, permissions, client_scope, decision, decided_by,
                     decided_at, reason FROM review_lines WHERE campaign_id = $1 ORDER BY username",
                &[&campaign_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ReviewLine {
                    campaign_id: r.try_get(0)?,
                    username: r.try_get(1)?,
                    role: r.try_get(2)?,
                    permissions: r.try_get(3)?,
                    client_scope: r.try_get(4)?,
                    decision: r.try_get(5)?,
                    decided_by: r.try_get(6)?,
                    decided_at_ms: r.try_get(7)?,
                    reason: r.try_get(8)?,
                })
            })
            .collect()
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
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "UPDATE review_lines SET decision = $1, decided_by = $2, decided_at = $3, reason = $4
                 WHERE campaign_id = $5 AND username = $6 AND decision IS NULL",
                &[&decision, &by, &at_ms, &reason, &campaign_id, &username.as_str()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        if decision == "revoked" {
            tx.execute(
                "UPDATE users SET disabled = TRUE WHERE username = $1",
                &[&username.as_str()],
            )
            .await?;
            tx.execute(
                "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = $1)",
                &[&username.as_str()],
            )
            .await?;
        }
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn user_revoke_sessions(&self, username: &Username, event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = $1)",
            &[&username.as_str()],
        )
        .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn honeytoken_add(&self, client: ClientId, now_ms: i64, event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "INSERT INTO honeytokens (client_id, created_at) VALUES ($1, $2)
             ON CONFLICT (client_id) DO NOTHING",
            &[&client.to_string(), &now_ms],
        )
        .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn honeytokens(&self) -> Result<Vec<String>> {
        let rows = self
            .client()
            .await?
            .query("SELECT client_id FROM honeytokens ORDER BY client_id", &[])
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT seq, hash, at, public_key, signature FROM audit_checkpoints ORDER BY seq",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Checkpoint {
                    seq: r.try_get(0)?,
                    hash: r.try_get(1)?,
                    at_ms: r.try_get(2)?,
                    public_key: r.try_get(3)?,
                    signature: r.try_get(4)?,
                })
            })
            .collect()
    }

    async fn schedule_lease_take(
        &self,
        name: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO schedule_leases (name, owner, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
                 WHERE schedule_leases.expires_at < $4",
                &[&name, &owner, &until_ms, &now_ms],
            )
            .await?;
        Ok(n == 1)
    }

    async fn schedule_lease_renew(&self, name: &str, owner: &str, until_ms: i64) -> Result<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE schedule_leases SET expires_at = $3 WHERE name = $1 AND owner = $2",
                &[&name, &owner, &until_ms],
            )
            .await?;
        Ok(n == 1)
    }

    async fn schedule_lease_release(&self, name: &str, owner: &str) -> Result<()> {
        self.client()
            .await?
            .execute(
                "DELETE FROM schedule_leases WHERE name = $1 AND owner = $2",
                &[&name, &owner],
            )
            .await?;
        Ok(())
    }

    async fn backup_run_record(&self, r: crate::BackupRun, event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "INSERT INTO backup_runs (id, kind, trigger, started_at, finished_at, outcome,
                 backup_id, backup_created_at, bytes, target, error, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &r.id,
                &r.kind,
                &r.trigger,
                &r.started_at_ms,
                &r.finished_at_ms,
                &r.outcome,
                &r.backup_id,
                &r.backup_created_at_ms,
                &r.bytes,
                &r.target,
                &r.error,
                &r.detail,
            ],
        )
        .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn backup_runs(&self, kind: Option<&str>, limit: u32) -> Result<Vec<crate::BackupRun>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, kind, trigger, started_at, finished_at, outcome, backup_id,
                     backup_created_at, bytes, target, error, detail
                 FROM backup_runs WHERE ($1::TEXT IS NULL OR kind = $1)
                 ORDER BY started_at DESC, id DESC LIMIT $2",
                &[&kind, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::BackupRun {
                    id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    trigger: r.try_get(2)?,
                    started_at_ms: r.try_get(3)?,
                    finished_at_ms: r.try_get(4)?,
                    outcome: r.try_get(5)?,
                    backup_id: r.try_get(6)?,
                    backup_created_at_ms: r.try_get(7)?,
                    bytes: r.try_get(8)?,
                    target: r.try_get(9)?,
                    error: r.try_get(10)?,
                    detail: r.try_get(11)?,
                })
            })
            .collect()
    }

    async fn backup_snapshot(&self) -> Result<crate::Snapshot> {
        backup::snapshot(self).await
    }

    async fn restore_target_occupied(&self) -> Result<Vec<&'static str>> {
        let client = self.client().await?;
        backup::occupied(&client).await
    }

    async fn restore(
        &self,
        mode: crate::RestoreMode,
        feed: crate::RestoreFeed,
    ) -> Result<crate::RestoreOutcome> {
        backup::restore(self, mode, feed).await
    }
}

type Param = Box<dyn tokio_postgres::types::ToSql + Sync + Send>;

fn boxed(values: Vec<QueryValue>) -> Vec<Param> {
    values
        .into_iter()
        .map(|v| match v {
            QueryValue::Text(t) => Box::new(t) as Param,
            QueryValue::Int(i) => Box::new(i),
            QueryValue::Bytes(b) => Box::new(b),
            QueryValue::Null => Box::new(Option::<String>::None),
        })
        .collect()
}

fn refs(params: &[Param]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}
