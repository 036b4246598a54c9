use serde::{Deserialize, Serialize};

/// The built-in roles of DESIGN.md. The three administrators (三员) never read client data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    SystemAdmin,
    SecurityAdmin,
    AuditAdmin,
    Supervisor,
    Accountant,
    Auditor,
    Sales,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role '{0}'; expected one of: system_admin, security_admin, audit_admin, supervisor, accountant, auditor, sales")]
pub struct RoleParseError(String);

impl Role {
    pub const ALL: [Role; 7] = [
        Role::SystemAdmin,
        Role::SecurityAdmin,
        Role::AuditAdmin,
        Role::Supervisor,
        Role::Accountant,
        Role::Auditor,
        Role::Sales,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SystemAdmin => "system_admin",
            Role::SecurityAdmin => "security_admin",
            Role::AuditAdmin => "audit_admin",
            Role::Supervisor => "supervisor",
            Role::Accountant => "accountant",
            Role::Auditor => "auditor",
            Role::Sales => "sales",
        }
    }

    pub fn parse(s: &str) -> Result<Role, RoleParseError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| RoleParseError(s.chars().take(40).collect()))
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Role::SystemAdmin => "系统管理员",
            Role::SecurityAdmin => "安全管理员",
            Role::AuditAdmin => "审计管理员",
            Role::Supervisor => "财务主管",
            Role::Accountant => "会计",
            Role::Auditor => "审计员",
            Role::Sales => "销售/客服",
        }
    }

    /// The permissions of each role. Deny by default: anything not listed here is refused.
    pub fn permissions(self) -> &'static [Permission] {
        use Action::*;
        use Resource::*;
        const fn p(resource: Resource, action: Action) -> Permission {
            Permission { resource, action }
        }
        const SYSTEM_ADMIN: &[Permission] = &[
            p(User, Read),
            p(User, Create),
            p(SystemConfig, Read),
            p(Backup, Read),
            p(Backup, Create),
        ];
        // The security administrator sees that backups, restore tests and drills happen (the
        // evidence of recoverability) but does not run them.
        const SECURITY_ADMIN: &[Permission] = &[
            p(Backup, Read),
            p(SecurityPolicy, Read),
            p(SecurityPolicy, Update),
            p(Alert, Read),
            p(Alert, Update),
            p(RoleAssignment, Read),
            p(RoleAssignment, Update),
            p(Keys, Read),
            p(Keys, Update),
        ];
        const AUDIT_ADMIN: &[Permission] = &[p(AuditLog, Read), p(AuditLog, Export)];
        const SUPERVISOR: &[Permission] = &[
            p(Client, Read),
            p(Client, Create),
            p(Client, Update),
            p(Client, Delete),
            // Erasing a client destroys its key: one supervisor asks, another approves.
            p(Client, Approve),
            p(Client, Reveal),
            p(Client, Export),
            p(ClientAssignment, Update),
            // A moved user's clients go to a new accountant only with a supervisor's approval.
            p(ClientAssignment, Approve),
            // In an access review, a supervisor certifies or revokes their team's lines.
            p(RoleAssignment, Approve),
            p(Contact, Read),
            p(Contact, Create),
            p(Contact, Update),
            p(Contact, Delete),
            p(Contract, Read),
            p(Contract, Create),
            p(Contract, Update),
            p(Contract, Delete),
            p(FinancialRecord, Read),
            p(FinancialRecord, Create),
            p(FinancialRecord, Update),
            p(FilingTask, Read),
            p(FilingTask, Create),
            p(FilingTask, Update),
            p(Interaction, Read),
            p(Interaction, Create),
            p(Interaction, Update),
            p(Document, Read),
            p(Document, Create),
            p(Document, Delete),
            p(Custody, Read),
            p(Custody, Create),
            p(Custody, Update),
            p(Payment, Read),
            p(Payment, Create),
            p(Lead, Read),
            p(Lead, Create),
            p(Lead, Update),
        ];
        // The seed's example: an accountant reads and writes the books and filings of their
        // clients, reads but never modifies contracts, and exports nothing without approval.
        const ACCOUNTANT: &[Permission] = &[
            p(Client, Read),
            p(Client, Create),
            p(Client, Update),
            p(Client, Reveal),
            p(Contact, Read),
            p(Contact, Create),
            p(Contact, Update),
            p(Contract, Read),
            p(FinancialRecord, Read),
            p(FinancialRecord, Create),
            p(FinancialRecord, Update),
            p(FilingTask, Read),
            p(FilingTask, Create),
            p(FilingTask, Update),
            p(Interaction, Read),
            p(Interaction, Create),
            p(Interaction, Update),
            p(Document, Read),
            p(Document, Create),
            p(Custody, Read),
            p(Custody, Update),
            p(Payment, Read),
        ];
        const AUDITOR: &[Permission] = &[p(Client, Read), p(FinancialRecord, Read)];
        // Sales see ID numbers masked, and reveal one with a stated reason when a registration
        // needs it; the reveal is audited. They never see financial records.
        const SALES: &[Permission] = &[
            p(Client, Read),
            p(Client, Create),
            p(Client, Reveal),
            p(Contact, Read),
            p(Contact, Create),
            p(Contact, Update),
            p(Contract, Read),
            p(Contract, Create),
            p(Interaction, Read),
            p(Interaction, Create),
            p(Interaction, Update),
            p(Document, Read),
            p(Document, Create),
            p(Payment, Read),
            p(Payment, Create),
            p(Lead, Read),
            p(Lead, Create),
            p(Lead, Update),
        ];
        match self {
            Role::SystemAdmin => SYSTEM_ADMIN,
            Role::SecurityAdmin => SECURITY_ADMIN,
            Role::AuditAdmin => AUDIT_ADMIN,
            Role::Supervisor => SUPERVISOR,
            Role::Accountant => ACCOUNTANT,
            Role::Auditor => AUDITOR,
            Role::Sales => SALES,
        }
    }

    pub fn may(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }

    /// The three administrators of 三员分立: security, system and audit administration are kept
    /// apart from each other and from client work.
    pub fn is_administrator(self) -> bool {
        matches!(
            self,
            Role::SystemAdmin | Role::SecurityAdmin | Role::AuditAdmin
        )
    }

    /// Which clients the role reaches. The supervisor supervises a team (DESIGN.md); sales and
    /// service answer any client of the firm.
    pub fn scope_rule(self) -> crate::ScopeRule {
        use crate::ScopeRule;
        match self {
            Role::Supervisor => ScopeRule::Team,
            Role::Sales => ScopeRule::All,
            Role::Auditor => ScopeRule::Engagements,
            Role::Accountant | Role::SystemAdmin | Role::SecurityAdmin | Role::AuditAdmin => {
                ScopeRule::Assigned
            }
        }
    }

    /// How much of a sensitive field the role sees on records in its scope.
    pub fn visibility(self, field: Field) -> crate::Visibility {
        use crate::Visibility::*;
        if self.is_administrator() {
            return Hidden;
        }
        match (self, field) {
            (Role::Supervisor | Role::Accountant, _) => Visible,
            (Role::Sales, Field::ContactMobile) => Visible,
            (Role::Sales, Field::LegalRepIdNumber | Field::ContactIdNumber) => Masked,
            (Role::Sales, Field::BankAccount) => Hidden,
            (Role::Auditor, _) => Masked,
            (Role::SystemAdmin | Role::SecurityAdmin | Role::AuditAdmin, _) => Hidden,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    Client,
    /// Which accountant and team a client is assigned to.
    ClientAssignment,
    Contact,
    Contract,
    FinancialRecord,
    FilingTask,
    Interaction,
    Document,
    /// Custody of clients' tax UKeys, certificates and seals.
    Custody,
    /// Payments against contracts, and the arrears they leave.
    Payment,
    Lead,
    /// Security alerts raised by the monitoring rules.
    Alert,
    /// Which role a user holds.
    RoleAssignment,
    User,
    AuditLog,
    SystemConfig,
    SecurityPolicy,
    /// Backups, restore tests and recovery drills: their record, and running them.
    Backup,
    /// The keyring: key versions, their ages, rotation.
    Keys,
}

impl Resource {
    /// Resources that hold or reveal client data, which the three administrators never touch.
    pub fn is_client_data(self) -> bool {
        !matches!(
            self,
            Resource::Alert
                | Resource::RoleAssignment
                | Resource::User
                | Resource::AuditLog
                | Resource::SystemConfig
                | Resource::SecurityPolicy
                | Resource::Backup
                | Resource::Keys
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
    Export,
    Reveal,
    Approve,
}

pub(crate) const CLIENT_READ: Permission = Permission::new(Resource::Client, Action::Read);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Permission {
    pub resource: Resource,
    pub action: Action,
}

impl Permission {
    pub const fn new(resource: Resource, action: Action) -> Self {
        Permission { resource, action }
    }
}

impl Permission {
    /// The permissions a custom role may be composed of: those of the client roles, in a
    /// stable order.
    pub fn composable() -> Vec<Permission> {
        let mut all: Vec<Permission> = Role::ALL
            .into_iter()
            .flat_map(|r| r.permissions().iter().copied())
            .filter(|p| p.resource.is_client_data())
            .collect();
        all.sort_by_key(|p| p.name());
        all.dedup();
        all
    }

    /// Reads `resource:action` back; only permissions some role holds are known.
    pub fn parse(name: &str) -> Option<Permission> {
        Role::ALL
            .into_iter()
            .flat_map(|r| r.permissions().iter().copied())
            .find(|p| p.name() == name)
    }

    /// `resource:action`, e.g. `client:read`.
    pub fn name(self) -> String {
        let resource = match self.resource {
            Resource::Client => "client",
            Resource::ClientAssignment => "client_assignment",
            Resource::Contact => "contact",
            Resource::Contract => "contract",
            Resource::FinancialRecord => "financial_record",
            Resource::FilingTask => "filing_task",
            Resource::Interaction => "interaction",
            Resource::Document => "document",
            Resource::Custody => "custody",
            Resource::Payment => "payment",
            Resource::Lead => "lead",
            Resource::Alert => "alert",
            Resource::RoleAssignment => "role_assignment",
            Resource::User => "user",
            Resource::AuditLog => "audit_log",
            Resource::SystemConfig => "system_config",
            Resource::SecurityPolicy => "security_policy",
            Resource::Backup => "backup",
            Resource::Keys => "keys",
        };
        let action = match self.action {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Export => "export",
            Action::Reveal => "reveal",
            Action::Approve => "approve",
        };
        format!("{resource}:{action}")
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}:{:?}", self.resource, self.action)
    }
}

/// Sensitive fields whose visibility differs per role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    LegalRepIdNumber,
    ContactMobile,
    ContactIdNumber,
    BankAccount,
}

impl Field {
    pub const ALL: [Field; 4] = [
        Field::LegalRepIdNumber,
        Field::ContactMobile,
        Field::ContactIdNumber,
        Field::BankAccount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::LegalRepIdNumber => "legal_rep_id_number",
            Field::ContactMobile => "contact_mobile",
            Field::ContactIdNumber => "contact_id_number",
            Field::BankAccount => "bank_account",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()).unwrap(), role);
        }
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn the_three_administrators_never_touch_client_data() {
        for role in [Role::SystemAdmin, Role::SecurityAdmin, Role::AuditAdmin] {
            assert!(
                role.permissions()
                    .iter()
                    .all(|p| !p.resource.is_client_data()),
                "{role} must not hold client permissions"
            );
            for field in Field::ALL {
                assert_eq!(role.visibility(field), crate::Visibility::Hidden);
            }
        }
    }

    #[test]
    fn only_the_audit_admin_reads_the_audit_log() {
        for role in Role::ALL {
            let reads = role.may(Permission::new(Resource::AuditLog, Action::Read));
            assert_eq!(reads, role == Role::AuditAdmin, "{role}");
        }
    }

    #[test]
    fn only_the_system_admin_runs_backups_and_no_client_role_sees_them() {
        for role in Role::ALL {
            let run = role.may(Permission::new(Resource::Backup, Action::Create));
            assert_eq!(run, role == Role::SystemAdmin, "{role}");
            let read = role.may(Permission::new(Resource::Backup, Action::Read));
            assert_eq!(
                read,
                matches!(role, Role::SystemAdmin | Role::SecurityAdmin),
                "{role}"
            );
        }
    }

    #[test]
    fn nobody_may_delete_audit_events() {
        for role in Role::ALL {
            assert!(!role.may(Permission::new(Resource::AuditLog, Action::Delete)));
        }
    }

    #[test]
    fn the_seeds_example_accountants_read_the_books_but_never_modify_contracts() {
        let a = Role::Accountant;
        assert!(a.may(Permission::new(Resource::FinancialRecord, Action::Read)));
        assert!(a.may(Permission::new(Resource::Contract, Action::Read)));
        for action in [Action::Create, Action::Update, Action::Delete] {
            assert!(
                !a.may(Permission::new(Resource::Contract, action)),
                "{action:?}"
            );
        }
        assert!(!a.may(Permission::new(Resource::Client, Action::Export)));
    }

    #[test]
    fn auditors_write_nothing_and_sales_never_see_the_books() {
        for p in Role::Auditor.permissions() {
            assert_eq!(p.action, Action::Read, "auditor holds {p}");
        }
        assert!(!Role::Sales.may(Permission::new(Resource::FinancialRecord, Action::Read)));
        assert_eq!(
            Role::Sales.visibility(Field::BankAccount),
            crate::Visibility::Hidden
        );
    }

    #[test]
    fn accountants_may_not_delete_clients_and_auditors_may_not_write() {
        assert!(!Role::Accountant.may(Permission::new(Resource::Client, Action::Delete)));
        // Only the supervisor approves an erasure among the built-in roles.
        for role in Role::ALL {
            assert_eq!(
                role.may(Permission::new(Resource::Client, Action::Approve)),
                role == Role::Supervisor,
                "{role}"
            );
        }
        for action in [Action::Create, Action::Update, Action::Delete] {
            assert!(!Role::Auditor.may(Permission::new(Resource::Client, action)));
        }
    }
}
