//! Values for the stories: users, sessions, events, and clients sealed the way the application
//! seals them (per-client DEK wrapped by the KEK, AAD bound to table/row/field, blind index).

use std::future::Future;

use zf_audit::{Actor, AuditAction, AuditEvent, Outcome, StoredEvent};
use zf_crypto::{
    Aad, BlindIndex, BlindIndexKey, CryptoError, Dek, Kek, KeyVersion, MasterKey, Sealed,
    WrappedKey,
};
use zf_domain::{ClientId, ClientName, IdNumber, PersonName, TaxpayerType, Uscc, UserId, Username};
use zf_policy::Role;
use zf_store::{ClientRecord, ClientRow, NewUser, PasswordHash, SessionRow, Store, UserRow};

pub const TABLE: &str = "clients";
pub const ID_FIELD: &str = "legal_rep_id_number";
pub const ID_DOMAIN: &str = "clients.legal_rep_id_number";
pub const T0: i64 = 1_750_000_000_000;

pub fn username(name: &str) -> Username {
    Username::parse(name).expect("valid username")
}

pub fn new_user(name: &str, role: Role) -> NewUser {
    NewUser {
        id: UserId::new_random(),
        username: username(name),
        role,
        password_hash: PasswordHash(format!("$argon2id$v=19$m=19456,t=2,p=1$salt-{name}$hash")),
        must_change_password: true,
        created_at_ms: T0,
    }
}

pub fn session(user: UserId, tag: u8) -> SessionRow {
    SessionRow {
        id_hash: vec![tag; 32],
        user_id: user,
        created_at_ms: T0 + i64::from(tag),
        last_seen_ms: T0 + i64::from(tag),
        absolute_expiry_ms: T0 + 12 * 3_600_000,
        source: Some(format!("192.0.2.{tag}")),
        second_factor_pending: false,
        factor_at_ms: None,
        device: Some(format!("test-agent/{tag}")),
    }
}

/// A successful event by a named staff member, with a request id, on no record yet.
pub fn event(action: AuditAction) -> AuditEvent {
    let actor = Actor {
        user_id: Some(UserId::new_random()),
        name: "supervisor1".into(),
        session_ref: Some("a1b2c3d4".into()),
        source: Some("198.51.100.7".into()),
        device: None,
    };
    AuditEvent::new(T0 + 1, actor, action, Outcome::Success)
        .request(Some(format!("req-{}", uuid::Uuid::new_v4().simple())))
}

pub fn uscc(n: u32) -> Uscc {
    Uscc::with_check_char(&format!("91350100MA{n:07}")).expect("valid USCC prefix")
}

pub fn id_number(n: u32) -> IdNumber {
    IdNumber::with_check_char(&format!("11010519900307{n:03}")).expect("valid ID number prefix")
}

/// The key hierarchy of one deployment, made fresh for each test.
pub struct Keys {
    pub kek: Kek,
    pub index_key: BlindIndexKey,
}

impl Default for Keys {
    fn default() -> Self {
        Keys {
            kek: MasterKey::generate().kek(KeyVersion(1)),
            index_key: BlindIndexKey::generate(),
        }
    }
}

pub fn key_context(id: ClientId) -> Vec<u8> {
    format!("client:{id}").into_bytes()
}

pub fn aad(id: ClientId) -> Aad {
    Aad::new(TABLE, id.to_string(), ID_FIELD)
}

impl Keys {
    pub fn index(&self, id_number: &IdNumber) -> BlindIndex {
        self.index_key
            .index(ID_DOMAIN, id_number.as_str().as_bytes())
    }

    pub fn seal(&self, dek: &Dek, client: ClientId, id_number: &IdNumber) -> Sealed {
        dek.seal(KeyVersion(1), id_number.as_str().as_bytes(), &aad(client))
    }

    /// What the application does to show the ID number: unwrap the record's key, open the field
    /// for this row.
    pub fn open_id_number(&self, record: &ClientRecord) -> Result<String, CryptoError> {
        let dek = self
            .kek
            .unwrap_key(&record.key.current.wrapped, &key_context(record.row.id))?;
        let plain = dek.open(&record.row.legal_rep_id_number, &aad(record.row.id))?;
        Ok(String::from_utf8(plain.to_vec()).expect("an ID number is UTF-8"))
    }

    /// A client row sealed under a fresh DEK, and that DEK wrapped for the store.
    pub fn client(
        &self,
        n: u32,
        name: &str,
        id_number: &IdNumber,
        assigned: Option<UserId>,
    ) -> (ClientRow, WrappedKey) {
        self.client_with_dek(&Dek::generate(), n, name, id_number, assigned)
    }

    pub fn client_with_dek(
        &self,
        dek: &Dek,
        n: u32,
        name: &str,
        id_number: &IdNumber,
        assigned: Option<UserId>,
    ) -> (ClientRow, WrappedKey) {
        let id = ClientId::new_random();
        let row = ClientRow {
            id,
            name: ClientName::parse(name).expect("valid client name"),
            uscc: uscc(n),
            taxpayer_type: TaxpayerType::SmallScale,
            legal_rep_name: PersonName::parse("张三").expect("valid person name"),
            legal_rep_id_number: self.seal(dek, id, id_number),
            legal_rep_id_index: self.index(id_number),
            assigned_accountant: assigned,
            status: zf_domain::ClientStatus::InService,
            team: None,
            tags: zf_domain::Tags::default(),
            notes: None,
            registered_capital: None,
            tax_authority: None,
            created_at_ms: T0 + i64::from(n),
            updated_at_ms: T0 + i64::from(n),
            version: 1,
        };
        (row, self.kek.wrap(dek, &key_context(id)))
    }
}

/// Every field of two client rows, compared one by one (the row type has no `PartialEq`).
pub fn assert_same_client(found: &ClientRow, expected: &ClientRow) {
    assert_eq!(found.id, expected.id, "id");
    assert_eq!(found.name, expected.name, "name");
    assert_eq!(found.uscc, expected.uscc, "uscc");
    assert_eq!(found.taxpayer_type, expected.taxpayer_type, "taxpayer_type");
    assert_eq!(
        found.legal_rep_name, expected.legal_rep_name,
        "legal_rep_name"
    );
    assert_eq!(
        found.legal_rep_id_number, expected.legal_rep_id_number,
        "legal_rep_id_number"
    );
    assert_eq!(
        found.legal_rep_id_index, expected.legal_rep_id_index,
        "legal_rep_id_index"
    );
    assert_eq!(
        found.assigned_accountant, expected.assigned_accountant,
        "assigned_accountant"
    );
    assert_eq!(found.created_at_ms, expected.created_at_ms, "created_at_ms");
    assert_eq!(found.updated_at_ms, expected.updated_at_ms, "updated_at_ms");
    assert_eq!(found.version, expected.version, "version");
}

pub fn assert_same_user(found: &UserRow, expected: &NewUser) {
    assert_eq!(found.id, expected.id, "id");
    assert_eq!(found.username, expected.username, "username");
    assert_eq!(found.role, expected.role, "role");
    assert_eq!(found.password_hash, expected.password_hash, "password_hash");
    assert_eq!(
        found.must_change_password, expected.must_change_password,
        "must_change_password"
    );
    assert!(!found.disabled, "a new user is enabled");
    assert_eq!(found.created_at_ms, expected.created_at_ms, "created_at_ms");
    assert_eq!(
        found.password_changed_at_ms, expected.created_at_ms,
        "password_changed_at_ms starts at creation"
    );
}

pub fn ids(records: &[ClientRecord]) -> Vec<ClientId> {
    records.iter().map(|r| r.row.id).collect()
}

/// The whole audit log, read through the store.
pub async fn audit_log(store: &dyn Store) -> Vec<StoredEvent> {
    store
        .audit_events(0, 1_000_000)
        .await
        .expect("read the audit log")
}

/// Runs `write` and checks what it left in the audit log: exactly the event `committed` when
/// it is given, nothing at all otherwise. Returns the write's own result.
pub async fn expect_audit<T>(
    store: &dyn Store,
    what: &str,
    committed: Option<&AuditEvent>,
    write: impl Future<Output = T>,
) -> T {
    let before = audit_log(store).await;
    let out = write.await;
    let after = audit_log(store).await;
    assert_eq!(
        after[..before.len().min(after.len())],
        before[..],
        "{what}: earlier audit events changed"
    );
    match committed {
        Some(event) => {
            assert_eq!(
                after.len(),
                before.len() + 1,
                "{what}: expected exactly one new audit event"
            );
            let last = after.last().expect("one event");
            assert_eq!(
                last.id,
                event.id.to_string(),
                "{what}: not the event passed in"
            );
            assert_eq!(last.action, event.action.as_str(), "{what}: action");
        }
        None => assert_eq!(
            after.len(),
            before.len(),
            "{what}: expected no new audit event"
        ),
    }
    out
}
