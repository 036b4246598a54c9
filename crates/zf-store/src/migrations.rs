//! Append-only, versioned migrations. An applied migration is never edited: a change is a new
//! entry. Each entry carries the SQL for both stores so they cannot drift apart in shape.

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "users, sessions, system and client keys, clients, the chained audit log",
        sqlite: r#"
CREATE TABLE system_keys (
    name TEXT PRIMARY KEY,
    wrapped BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL CONSTRAINT users_username_key UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    must_change_password INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
);
CREATE TABLE sessions (
    id_hash BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    absolute_expiry INTEGER NOT NULL,
    source TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE client_keys (
    client_id TEXT PRIMARY KEY,
    wrapped_dek BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE clients (
    id TEXT PRIMARY KEY REFERENCES client_keys(client_id),
    name TEXT NOT NULL,
    uscc TEXT NOT NULL CONSTRAINT clients_uscc_key UNIQUE,
    taxpayer_type TEXT NOT NULL,
    legal_rep_name TEXT NOT NULL,
    legal_rep_id_number BLOB NOT NULL,
    legal_rep_id_index BLOB NOT NULL,
    assigned_accountant TEXT REFERENCES users(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX clients_id_index ON clients(legal_rep_id_index);
CREATE INDEX clients_assigned ON clients(assigned_accountant, name);
CREATE INDEX clients_name ON clients(name, id);
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    at INTEGER NOT NULL,
    actor_user_id TEXT,
    actor_name TEXT NOT NULL,
    session_ref TEXT,
    source TEXT,
    device TEXT,
    action TEXT NOT NULL,
    resource TEXT,
    record_id TEXT,
    fields TEXT NOT NULL,
    outcome TEXT NOT NULL,
    request_id TEXT,
    detail TEXT,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX audit_events_record ON audit_events(resource, record_id, at, seq);
CREATE INDEX audit_events_actor ON audit_events(actor_name, at, seq);
CREATE INDEX audit_events_action ON audit_events(action, at, seq);
CREATE INDEX audit_events_source ON audit_events(source, at, seq);
CREATE INDEX audit_events_at ON audit_events(at, seq);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TABLE audit_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    retention_ms INTEGER NOT NULL CHECK (retention_ms >= 15552000000)
);
INSERT INTO audit_settings (id, retention_ms) VALUES (1, 15552000000);
CREATE TABLE audit_archives (
    last_seq INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    last_hash BLOB NOT NULL,
    sha256 BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    signature BLOB NOT NULL
);
CREATE TRIGGER audit_archives_no_update BEFORE UPDATE ON audit_archives
BEGIN SELECT RAISE(ABORT, 'audit archives are append-only'); END;
CREATE TRIGGER audit_archives_no_delete BEFORE DELETE ON audit_archives
BEGIN SELECT RAISE(ABORT, 'audit archives are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN NOT EXISTS (SELECT 1 FROM audit_archives a WHERE OLD.seq BETWEEN a.first_seq AND a.last_seq)
  OR OLD.at >= CAST(strftime('%s', 'now') AS INTEGER) * 1000
               - (SELECT retention_ms FROM audit_settings WHERE id = 1)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: only archived events past their retention may be removed'); END;
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));
CREATE TABLE audit_checkpoints (
    seq INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    at INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    signature BLOB NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
"#,
        postgres: r#"
CREATE TABLE system_keys (
    name TEXT PRIMARY KEY,
    wrapped BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL CONSTRAINT users_username_key UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    must_change_password BOOLEAN NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);
CREATE TABLE sessions (
    id_hash BYTEA PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    absolute_expiry BIGINT NOT NULL,
    source TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE client_keys (
    client_id TEXT PRIMARY KEY,
    wrapped_dek BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE clients (
    id TEXT PRIMARY KEY REFERENCES client_keys(client_id),
    name TEXT NOT NULL,
    uscc TEXT NOT NULL CONSTRAINT clients_uscc_key UNIQUE,
    taxpayer_type TEXT NOT NULL,
    legal_rep_name TEXT NOT NULL,
    legal_rep_id_number BYTEA NOT NULL,
    legal_rep_id_index BYTEA NOT NULL,
    assigned_accountant TEXT REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX clients_id_index ON clients(legal_rep_id_index);
CREATE INDEX clients_assigned ON clients(assigned_accountant, name);
CREATE INDEX clients_name ON clients(name, id);
CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    at BIGINT NOT NULL,
    actor_user_id TEXT,
    actor_name TEXT NOT NULL,
    session_ref TEXT,
    source TEXT,
    device TEXT,
    action TEXT NOT NULL,
    resource TEXT,
    record_id TEXT,
    fields TEXT NOT NULL,
    outcome TEXT NOT NULL,
    request_id TEXT,
    detail TEXT,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
CREATE INDEX audit_events_record ON audit_events(resource, record_id, at, seq);
CREATE INDEX audit_events_actor ON audit_events(actor_name, at, seq);
CREATE INDEX audit_events_action ON audit_events(action, at, seq);
CREATE INDEX audit_events_source ON audit_events(source, at, seq);
CREATE INDEX audit_events_at ON audit_events(at, seq);
CREATE TABLE audit_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    retention_ms BIGINT NOT NULL CHECK (retention_ms >= 15552000000)
);
INSERT INTO audit_settings (id, retention_ms) VALUES (1, 15552000000);
CREATE TABLE audit_archives (
    last_seq BIGINT PRIMARY KEY,
    first_seq BIGINT NOT NULL,
    last_hash BYTEA NOT NULL,
    sha256 BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    signature BYTEA NOT NULL
);
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$;
CREATE FUNCTION audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND EXISTS (SELECT 1 FROM audit_archives a WHERE OLD.seq BETWEEN a.first_seq AND a.last_seq)
       AND OLD.at < (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT
                    - (SELECT retention_ms FROM audit_settings WHERE id = 1) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit log is append-only: only archived events past their retention may be removed';
END $$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_guard();
CREATE TRIGGER audit_archives_no_change BEFORE UPDATE OR DELETE ON audit_archives
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));
CREATE TABLE audit_checkpoints (
    seq BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL,
    at BIGINT NOT NULL,
    public_key BYTEA NOT NULL,
    signature BYTEA NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
"#,
    },
    Migration {
        version: 2,
        name: "security monitoring: rule cursor, alerts, honeytokens",
        sqlite: r#"
CREATE TABLE monitor_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL
);
INSERT INTO monitor_state (id, last_seq) VALUES (1, 0);
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    dedup_key TEXT NOT NULL CONSTRAINT alerts_dedup_key UNIQUE,
    at INTEGER NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    user_id TEXT,
    username TEXT,
    source TEXT,
    summary TEXT NOT NULL,
    event_seq INTEGER,
    responses TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT
);
CREATE INDEX alerts_status ON alerts(status, at);
CREATE TABLE honeytokens (
    client_id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);
"#,
        postgres: r#"
CREATE TABLE monitor_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL
);
INSERT INTO monitor_state (id, last_seq) VALUES (1, 0);
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    dedup_key TEXT NOT NULL CONSTRAINT alerts_dedup_key UNIQUE,
    at BIGINT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    user_id TEXT,
    username TEXT,
    source TEXT,
    summary TEXT NOT NULL,
    event_seq BIGINT,
    responses TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT
);
CREATE INDEX alerts_status ON alerts(status, at);
CREATE TABLE honeytokens (
    client_id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
"#,
    },
    Migration {
        version: 3,
        name: "users: time of last sign-in, for dormant-account handling",
        sqlite: "ALTER TABLE users ADD COLUMN last_login_at INTEGER;",
        postgres: "ALTER TABLE users ADD COLUMN last_login_at BIGINT;",
    },
    Migration {
        version: 4,
        name: "access reviews: campaigns and their lines",
        sqlite: r#"
CREATE TABLE review_campaigns (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE review_lines (
    campaign_id TEXT NOT NULL REFERENCES review_campaigns(id),
    username TEXT NOT NULL,
    role TEXT NOT NULL,
    permissions TEXT NOT NULL,
    client_scope TEXT NOT NULL,
    decision TEXT,
    decided_by TEXT,
    decided_at INTEGER,
    reason TEXT,
    PRIMARY KEY (campaign_id, username)
);
"#,
        postgres: r#"
CREATE TABLE review_campaigns (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE review_lines (
    campaign_id TEXT NOT NULL REFERENCES review_campaigns(id),
    username TEXT NOT NULL,
    role TEXT NOT NULL,
    permissions TEXT NOT NULL,
    client_scope TEXT NOT NULL,
    decision TEXT,
    decided_by TEXT,
    decided_at BIGINT,
    reason TEXT,
    PRIMARY KEY (campaign_id, username)
);
"#,
    },
    Migration {
        version: 5,
        name: "users: consecutive failed sign-ins and lockout",
        sqlite: "ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
                 ALTER TABLE users ADD COLUMN locked_until INTEGER;",
        postgres: "ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
                   ALTER TABLE users ADD COLUMN locked_until BIGINT;",
    },
    Migration {
        version: 6,
        name: "the CRM: client status, team, tags and notes; records per client; document contents; leads",
        sqlite: r#"
ALTER TABLE clients ADD COLUMN status TEXT NOT NULL DEFAULT 'in_service';
ALTER TABLE clients ADD COLUMN team TEXT;
ALTER TABLE clients ADD COLUMN tags TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN notes BLOB;
ALTER TABLE clients ADD COLUMN registered_capital INTEGER;
ALTER TABLE clients ADD COLUMN tax_authority TEXT;
CREATE INDEX clients_created ON clients(created_at, id);
CREATE INDEX clients_updated ON clients(updated_at, id);
CREATE INDEX clients_status ON clients(status, name, id);
CREATE TABLE client_records (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES client_keys(client_id),
    kind TEXT NOT NULL,
    parent_id TEXT REFERENCES client_records(id),
    label TEXT NOT NULL,
    status TEXT,
    period TEXT,
    due_on TEXT,
    holder TEXT,
    plain TEXT NOT NULL,
    sealed BLOB,
    created_by TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX client_records_client ON client_records(client_id, kind, label, id);
CREATE INDEX client_records_parent ON client_records(parent_id);
CREATE INDEX client_records_due ON client_records(kind, due_on);
CREATE UNIQUE INDEX client_records_one_filing ON client_records(client_id, label, period)
    WHERE kind = 'filing_task';
CREATE TABLE record_index (
    field TEXT NOT NULL,
    token BLOB NOT NULL,
    record_id TEXT NOT NULL REFERENCES client_records(id) ON DELETE CASCADE,
    PRIMARY KEY (field, token, record_id)
);
CREATE INDEX record_index_record ON record_index(record_id);
CREATE TABLE record_blobs (
    record_id TEXT PRIMARY KEY REFERENCES client_records(id) ON DELETE CASCADE,
    content BLOB NOT NULL
);
CREATE TABLE leads (
    id TEXT PRIMARY KEY,
    company_name TEXT NOT NULL,
    stage TEXT NOT NULL,
    source TEXT,
    owner TEXT REFERENCES users(id),
    sealed BLOB NOT NULL,
    mobile_index BLOB,
    wrapped_dek BLOB NOT NULL,
    client_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX leads_stage ON leads(stage, updated_at, id);
CREATE INDEX leads_mobile ON leads(mobile_index);
"#,
        postgres: r#"
ALTER TABLE clients ADD COLUMN status TEXT NOT NULL DEFAULT 'in_service';
ALTER TABLE clients ADD COLUMN team TEXT;
ALTER TABLE clients ADD COLUMN tags TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN notes BYTEA;
ALTER TABLE clients ADD COLUMN registered_capital BIGINT;
ALTER TABLE clients ADD COLUMN tax_authority TEXT;
CREATE INDEX clients_created ON clients(created_at, id);
CREATE INDEX clients_updated ON clients(updated_at, id);
CREATE INDEX clients_status ON clients(status, name, id);
CREATE TABLE client_records (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES client_keys(client_id),
    kind TEXT NOT NULL,
    parent_id TEXT REFERENCES client_records(id),
    label TEXT NOT NULL,
    status TEXT,
    period TEXT,
    due_on TEXT,
    holder TEXT,
    plain TEXT NOT NULL,
    sealed BYTEA,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX client_records_client ON client_records(client_id, kind, label, id);
CREATE INDEX client_records_parent ON client_records(parent_id);
CREATE INDEX client_records_due ON client_records(kind, due_on);
CREATE UNIQUE INDEX client_records_one_filing ON client_records(client_id, label, period)
    WHERE kind = 'filing_task';
CREATE TABLE record_index (
    field TEXT NOT NULL,
    token BYTEA NOT NULL,
    record_id TEXT NOT NULL REFERENCES client_records(id) ON DELETE CASCADE,
    PRIMARY KEY (field, token, record_id)
);
CREATE INDEX record_index_record ON record_index(record_id);
CREATE TABLE record_blobs (
    record_id TEXT PRIMARY KEY REFERENCES client_records(id) ON DELETE CASCADE,
    content BYTEA NOT NULL
);
CREATE TABLE leads (
    id TEXT PRIMARY KEY,
    company_name TEXT NOT NULL,
    stage TEXT NOT NULL,
    source TEXT,
    owner TEXT REFERENCES users(id),
    sealed BYTEA NOT NULL,
    mobile_index BYTEA,
    wrapped_dek BYTEA NOT NULL,
    client_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX leads_stage ON leads(stage, updated_at, id);
CREATE INDEX leads_mobile ON leads(mobile_index);
"#,
    },
    Migration {
        version: 7,
        name: "second factor: TOTP enrolments, recovery codes; sessions: pending second factor, factor time, device",
        sqlite: r#"
CREATE TABLE user_mfa (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    totp_secret BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    confirmed_at INTEGER,
    last_step INTEGER
);
CREATE TABLE mfa_recovery_codes (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, code_hash)
);
ALTER TABLE sessions ADD COLUMN second_factor_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN factor_at INTEGER;
ALTER TABLE sessions ADD COLUMN device TEXT;
"#,
        postgres: r#"
CREATE TABLE user_mfa (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    totp_secret BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_step BIGINT
);
CREATE TABLE mfa_recovery_codes (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
ALTER TABLE sessions ADD COLUMN second_factor_pending BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sessions ADD COLUMN factor_at BIGINT;
ALTER TABLE sessions ADD COLUMN device TEXT;
"#,
    },
    Migration {
        version: 8,
        name: "audit engagements: which auditor reaches which client",
        sqlite: r#"
CREATE TABLE client_engagements (
    client_id TEXT NOT NULL REFERENCES client_keys(client_id),
    user_id TEXT NOT NULL REFERENCES users(id),
    granted_by TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, user_id)
);
CREATE INDEX client_engagements_user ON client_engagements(user_id, client_id);
"#,
        postgres: r#"
CREATE TABLE client_engagements (
    client_id TEXT NOT NULL REFERENCES client_keys(client_id),
    user_id TEXT NOT NULL REFERENCES users(id),
    granted_by TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, user_id)
);
CREATE INDEX client_engagements_user ON client_engagements(user_id, client_id);
"#,
    },
    Migration {
        version: 9,
        name: "API tokens: hashed secrets, their permissions and the clients they name",
        sqlite: r#"
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    secret_hash BLOB NOT NULL UNIQUE,
    permissions TEXT NOT NULL,
    listed_clients INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    last_used_at INTEGER,
    last_used_source TEXT,
    revoked_at INTEGER,
    revoked_by TEXT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id, created_at);
CREATE TABLE api_token_clients (
    token_id TEXT NOT NULL REFERENCES api_tokens(id),
    client_id TEXT NOT NULL REFERENCES client_keys(client_id),
    PRIMARY KEY (token_id, client_id)
);
CREATE INDEX api_token_clients_client ON api_token_clients(client_id);
"#,
        postgres: r#"
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    secret_hash BYTEA NOT NULL UNIQUE,
    permissions TEXT NOT NULL,
    listed_clients BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_used_at BIGINT,
    last_used_source TEXT,
    revoked_at BIGINT,
    revoked_by TEXT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id, created_at);
CREATE TABLE api_token_clients (
    token_id TEXT NOT NULL REFERENCES api_tokens(id),
    client_id TEXT NOT NULL REFERENCES client_keys(client_id),
    PRIMARY KEY (token_id, client_id)
);
CREATE INDEX api_token_clients_client ON api_token_clients(client_id);
"#,
    },
    Migration {
        version: 10,
        name: "password history: the hashes of replaced passwords",
        sqlite: r#"
CREATE TABLE password_history (
    user_id TEXT NOT NULL REFERENCES users(id),
    seq INTEGER NOT NULL,
    password_hash TEXT NOT NULL,
    replaced_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, seq)
);
"#,
        postgres: r#"
CREATE TABLE password_history (
    user_id TEXT NOT NULL REFERENCES users(id),
    seq BIGINT NOT NULL,
    password_hash TEXT NOT NULL,
    replaced_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, seq)
);
"#,
    },
    Migration {
        version: 11,
        name: "backup runs: scheduled backups, restore tests and drills as evidence",
        sqlite: r#"
CREATE TABLE backup_runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('backup', 'restore_test', 'drill')),
    trigger TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failed')),
    backup_id TEXT,
    backup_created_at INTEGER,
    bytes INTEGER,
    target TEXT,
    error TEXT,
    detail TEXT
);
CREATE INDEX backup_runs_kind ON backup_runs(kind, started_at);
"#,
        postgres: r#"
CREATE TABLE backup_runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('backup', 'restore_test', 'drill')),
    trigger TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failed')),
    backup_id TEXT,
    backup_created_at BIGINT,
    bytes BIGINT,
    target TEXT,
    error TEXT,
    detail TEXT
);
CREATE INDEX backup_runs_kind ON backup_runs(kind, started_at);
"#,
    },
    Migration {
        version: 12,
        name: "erasure ledger: erased clients stay erased through a restore",
        sqlite: r#"
CREATE TABLE client_erasures (
    client_id TEXT PRIMARY KEY,
    erased_at INTEGER NOT NULL
);
"#,
        postgres: r#"
CREATE TABLE client_erasures (
    client_id TEXT PRIMARY KEY,
    erased_at BIGINT NOT NULL
);
"#,
    },
    Migration {
        version: 13,
        name: "one-time codes by e-mail or SMS: registered addresses (sealed) and live codes (keyed hashes)",
        sqlite: r#"
CREATE TABLE otp_factors (
    user_id TEXT NOT NULL REFERENCES users(id),
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    address BLOB,
    pending_address BLOB,
    created_at INTEGER NOT NULL,
    confirmed_at INTEGER,
    PRIMARY KEY (user_id, channel),
    CHECK (address IS NOT NULL OR pending_address IS NOT NULL),
    CHECK ((confirmed_at IS NULL) = (address IS NULL))
);
CREATE TABLE otp_codes (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    purpose TEXT NOT NULL CHECK (purpose IN ('enrol', 'sign_in', 'step_up')),
    code_hash BLOB NOT NULL,
    sent_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts_left INTEGER NOT NULL CHECK (attempts_left >= 0),
    used_at INTEGER,
    window_start INTEGER NOT NULL,
    window_sends INTEGER NOT NULL
);
"#,
        postgres: r#"
CREATE TABLE otp_factors (
    user_id TEXT NOT NULL REFERENCES users(id),
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    address BYTEA,
    pending_address BYTEA,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    PRIMARY KEY (user_id, channel),
    CHECK (address IS NOT NULL OR pending_address IS NOT NULL),
    CHECK ((confirmed_at IS NULL) = (address IS NULL))
);
CREATE TABLE otp_codes (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    purpose TEXT NOT NULL CHECK (purpose IN ('enrol', 'sign_in', 'step_up')),
    code_hash BYTEA NOT NULL,
    sent_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts_left BIGINT NOT NULL CHECK (attempts_left >= 0),
    used_at BIGINT,
    window_start BIGINT NOT NULL,
    window_sends BIGINT NOT NULL
);
"#,
    },
    Migration {
        version: 14,
        name: "security keys and passkeys (WebAuthn): credentials and ceremonies in flight",
        sqlite: r#"
CREATE TABLE webauthn_credentials (
    credential_id BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_handle BLOB NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('passkey', 'security_key')),
    public_key BLOB NOT NULL,
    state BLOB NOT NULL,
    sign_count INTEGER NOT NULL,
    transports INTEGER NOT NULL,
    user_verified INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials(user_id);
CREATE TABLE webauthn_ceremonies (
    challenge BLOB PRIMARY KEY,
    purpose TEXT NOT NULL CHECK (purpose IN ('register', 'second_factor', 'step_up', 'passkey')),
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    session_hash BLOB,
    credential_kind TEXT,
    credential_name TEXT,
    state BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies(expires_at);
"#,
        postgres: r#"
CREATE TABLE webauthn_credentials (
    credential_id BYTEA PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_handle BYTEA NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('passkey', 'security_key')),
    public_key BYTEA NOT NULL,
    state BYTEA NOT NULL,
    sign_count BIGINT NOT NULL,
    transports BIGINT NOT NULL,
    user_verified BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials(user_id);
CREATE TABLE webauthn_ceremonies (
    challenge BYTEA PRIMARY KEY,
    purpose TEXT NOT NULL CHECK (purpose IN ('register', 'second_factor', 'step_up', 'passkey')),
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    session_hash BYTEA,
    credential_kind TEXT,
    credential_name TEXT,
    state BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies(expires_at);
"#,
    },
    Migration {
        version: 15,
        name: "custom roles composed from the built-in permissions; users' custom role and team",
        sqlite: r#"
CREATE TABLE custom_roles (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
ALTER TABLE users ADD COLUMN custom_role TEXT REFERENCES custom_roles(name);
ALTER TABLE users ADD COLUMN team TEXT;
CREATE INDEX users_custom_role ON users(custom_role);
CREATE INDEX clients_team ON clients(team, assigned_accountant);
"#,
        postgres: r#"
CREATE TABLE custom_roles (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
ALTER TABLE users ADD COLUMN custom_role TEXT REFERENCES custom_roles(name);
ALTER TABLE users ADD COLUMN team TEXT;
CREATE INDEX users_custom_role ON users(custom_role);
CREATE INDEX clients_team ON clients(team, assigned_accountant);
"#,
    },
    Migration {
        version: 16,
        name: "requests to reassign a moved user's clients, decided by a supervisor",
        sqlite: r#"
CREATE TABLE client_reassignments (
    id TEXT PRIMARY KEY,
    from_user TEXT NOT NULL REFERENCES users(id),
    clients INTEGER NOT NULL,
    requested_by TEXT,
    requested_at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    to_user TEXT REFERENCES users(id),
    moved INTEGER,
    decided_by TEXT,
    decided_at INTEGER,
    decision_reason TEXT
);
CREATE INDEX client_reassignments_status ON client_reassignments(status, requested_at);
"#,
        postgres: r#"
CREATE TABLE client_reassignments (
    id TEXT PRIMARY KEY,
    from_user TEXT NOT NULL REFERENCES users(id),
    clients BIGINT NOT NULL,
    requested_by TEXT,
    requested_at BIGINT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    to_user TEXT REFERENCES users(id),
    moved BIGINT,
    decided_by TEXT,
    decided_at BIGINT,
    decision_reason TEXT
);
CREATE INDEX client_reassignments_status ON client_reassignments(status, requested_at);
"#,
    },
    Migration {
        version: 17,
        name: "requests to erase a client, decided by a second person",
        // No foreign key to clients: approving deletes the client and keeps the request. One
        // pending request per client, so two people cannot each start one and approve the
        // other's.
        sqlite: r#"
CREATE TABLE erasure_requests (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    client_name TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_by_id TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by TEXT,
    decided_at INTEGER,
    decision_reason TEXT
);
CREATE UNIQUE INDEX erasure_requests_pending ON erasure_requests(client_id)
    WHERE status = 'pending';
CREATE INDEX erasure_requests_status ON erasure_requests(status, requested_at);
"#,
        postgres: r#"
CREATE TABLE erasure_requests (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    client_name TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_by_id TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by TEXT,
    decided_at BIGINT,
    decision_reason TEXT
);
CREATE UNIQUE INDEX erasure_requests_pending ON erasure_requests(client_id)
    WHERE status = 'pending';
CREATE INDEX erasure_requests_status ON erasure_requests(status, requested_at);
"#,
    },
    Migration {
        version: 18,
        name: "the keyring: key-encryption key versions and their state",
        sqlite: r#"
CREATE TABLE kek_versions (
    version INTEGER PRIMARY KEY CHECK (version > 0),
    state TEXT NOT NULL CHECK (state IN ('active', 'retired')),
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);
"#,
        postgres: r#"
CREATE TABLE kek_versions (
    version BIGINT PRIMARY KEY CHECK (version > 0),
    state TEXT NOT NULL CHECK (state IN ('active', 'retired')),
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
"#,
    },
    Migration {
        version: 19,
        name: "data-key versions: encryption counters, a previous key while data is re-encrypted; the deployment's cipher suite and blind-index key versions; key jobs (re-encryption, re-indexing), one running at a time",
        sqlite: r#"
ALTER TABLE client_keys ADD COLUMN dek_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE client_keys ADD COLUMN encryptions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE client_keys ADD COLUMN previous_dek BLOB;
ALTER TABLE client_keys ADD COLUMN previous_version INTEGER;
ALTER TABLE client_keys ADD COLUMN rekeyed_at INTEGER;
ALTER TABLE leads ADD COLUMN dek_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE leads ADD COLUMN encryptions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leads ADD COLUMN previous_dek BLOB;
ALTER TABLE leads ADD COLUMN previous_version INTEGER;
ALTER TABLE leads ADD COLUMN rekeyed_at INTEGER;
UPDATE client_keys SET encryptions =
      (SELECT count(*) + count(notes) FROM clients WHERE id = client_keys.client_id)
    + (SELECT count(sealed) FROM client_records WHERE client_id = client_keys.client_id)
    + (SELECT count(*) FROM record_blobs b JOIN client_records r ON r.id = b.record_id
       WHERE r.client_id = client_keys.client_id);
UPDATE leads SET encryptions = 1;
CREATE INDEX client_keys_encryptions ON client_keys(encryptions);
CREATE INDEX client_keys_previous ON client_keys(rekeyed_at) WHERE previous_dek IS NOT NULL;
CREATE INDEX leads_encryptions ON leads(encryptions);
CREATE INDEX leads_previous ON leads(rekeyed_at) WHERE previous_dek IS NOT NULL;
CREATE TABLE crypto_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE key_jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('reencrypt', 'reindex')),
    state TEXT NOT NULL CHECK (state IN ('running', 'finished')),
    phase TEXT NOT NULL,
    cursor TEXT,
    total INTEGER NOT NULL,
    holders_done INTEGER NOT NULL,
    values_done INTEGER NOT NULL,
    started_by TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER,
    lease_owner TEXT,
    lease_until INTEGER
);
CREATE UNIQUE INDEX key_jobs_one_running ON key_jobs(state) WHERE state = 'running';

"#,
        postgres: r#"
ALTER TABLE client_keys ADD COLUMN dek_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE client_keys ADD COLUMN encryptions BIGINT NOT NULL DEFAULT 0;
ALTER TABLE client_keys ADD COLUMN previous_dek BYTEA;
ALTER TABLE client_keys ADD COLUMN previous_version BIGINT;
ALTER TABLE client_keys ADD COLUMN rekeyed_at BIGINT;
ALTER TABLE leads ADD COLUMN dek_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE leads ADD COLUMN encryptions BIGINT NOT NULL DEFAULT 0;
ALTER TABLE leads ADD COLUMN previous_dek BYTEA;
ALTER TABLE leads ADD COLUMN previous_version BIGINT;
ALTER TABLE leads ADD COLUMN rekeyed_at BIGINT;
UPDATE client_keys SET encryptions =
      (SELECT count(*) + count(notes) FROM clients WHERE id = client_keys.client_id)
    + (SELECT count(sealed) FROM client_records WHERE client_id = client_keys.client_id)
    + (SELECT count(*) FROM record_blobs b JOIN client_records r ON r.id = b.record_id
       WHERE r.client_id = client_keys.client_id);
UPDATE leads SET encryptions = 1;
CREATE INDEX client_keys_encryptions ON client_keys(encryptions);
CREATE INDEX client_keys_previous ON client_keys(rekeyed_at) WHERE previous_dek IS NOT NULL;
CREATE INDEX leads_encryptions ON leads(encryptions);
CREATE INDEX leads_previous ON leads(rekeyed_at) WHERE previous_dek IS NOT NULL;
CREATE TABLE crypto_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE key_jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('reencrypt', 'reindex')),
    state TEXT NOT NULL CHECK (state IN ('running', 'finished')),
    phase TEXT NOT NULL,
    cursor TEXT,
    total BIGINT NOT NULL,
    holders_done BIGINT NOT NULL,
    values_done BIGINT NOT NULL,
    started_by TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT,
    lease_owner TEXT,
    lease_until BIGINT
);
CREATE UNIQUE INDEX key_jobs_one_running ON key_jobs(state) WHERE state = 'running';

"#,
    },
    Migration {
        version: 20,
        name: "leases on scheduled tasks (backups, restore tests), so one node of several runs each",
        sqlite: r#"
CREATE TABLE schedule_leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
"#,
        postgres: r#"
CREATE TABLE schedule_leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
"#,
    },
];

pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_strictly_increasing_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
        }
    }
}
