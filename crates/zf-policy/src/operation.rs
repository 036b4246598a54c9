use crate::{Action, Permission, Resource};

/// Every use-case the product offers, whatever the door it comes through (API, web UI).
///
/// A route is registered with exactly one operation, and [`Operation::requirement`] is an
/// exhaustive match: an operation without a policy entry does not compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Static, non-sensitive documents: the OpenAPI description, stylesheets, the login page.
    PublicDocument,
    Login,
    Logout,
    WhoAmI,
    ChangeOwnPassword,
    ClientList,
    ClientSearch,
    ClientCreate,
    ClientRead,
    ClientUpdate,
    /// Ask for a client to be erased (its data key destroyed), with a reason; a second person
    /// decides. Nobody erases a client alone.
    ErasureRequest,
    /// See the requests to erase clients.
    ErasureList,
    /// Approve (erasing the client at once) or reject another person's erasure request.
    ErasureDecide,
    /// Search and read the audit log.
    AuditSearch,
    /// The alert console.
    AlertList,
    AlertUpdate,
    /// Change a user's role (job transfer).
    RoleChange,
    /// Move a user to another team (job transfer).
    TeamChange,
    /// See the custom roles and what each grants.
    CustomRoleList,
    /// Create a custom role or change what it grants.
    CustomRoleSave,
    /// Delete a custom role nobody holds.
    CustomRoleDelete,
    /// A supervisor's part of an access review: the lines of their team's members.
    TeamReviewRead,
    /// A supervisor certifies or revokes a line of their team's member.
    TeamReviewAnswer,
    /// The keyring's state: KEK versions, ages, how many keys each wraps.
    KeyStatus,
    /// A new KEK version, every key rewrapped under it, the old versions retired.
    KeyRotate,
    /// New data keys for every client and lead, every value sealed again under them.
    KeyReencrypt,
    /// A new blind-index key, every search token computed again under it.
    KeyReindex,
    /// The running key job (re-encryption or re-index), else the latest one: phase and progress.
    KeyJobStatus,
    /// The security posture check: every check of the deployment's keys, second factors,
    /// backups, reviews, audit chain, alerts and certificate, with its verdict.
    SecurityPosture,
    /// See the requests to reassign a moved user's clients.
    ReassignmentList,
    /// Approve (to a named accountant) or reject moving a moved user's clients.
    ReassignmentDecide,
    /// See what a user may do, and why ("why can Zhang San see this?").
    EffectivePermissions,
    /// Start access reviews and answer their lines.
    ReviewManage,
    ReviewRead,
    /// Show one masked field of a client in full, with a stated reason.
    ClientReveal,
    /// Complete a sign-in with the second factor, after the password.
    LoginSecondFactor,
    /// Verify a second factor again on a signed-in session, for critical operations.
    StepUp,
    /// See one's own second-factor settings.
    MfaStatus,
    /// Set up one's own authenticator.
    MfaEnrol,
    /// Replace one's own recovery codes with a new set.
    RecoveryCodesRegenerate,
    /// List one's own sessions.
    OwnSessionList,
    /// End one of one's own sessions.
    OwnSessionRevoke,
    /// End every session of another user (security administrators).
    UserSessionsRevoke,
    /// List one's own security keys and passkeys.
    SecurityKeyList,
    /// Register a security key or passkey of one's own (a fresh second factor first, when one
    /// is enrolled: the application checks, since a first key needs none).
    SecurityKeyRegister,
    /// Rename one of one's own security keys.
    SecurityKeyRename,
    /// Remove one of one's own security keys (a fresh second factor first).
    SecurityKeyRemove,
    /// List another user's security keys (security administrators).
    UserSecurityKeyList,
    /// Remove another user's security key (security administrators).
    UserSecurityKeyRemove,
    /// Sign in with a passkey alone (user verification stands in for the password).
    PasskeyLogin,
    /// Issue an API token carrying a subset of one's own permissions.
    TokenCreate,
    /// List one's own API tokens (never their secrets).
    OwnTokenList,
    /// Revoke one of one's own API tokens.
    OwnTokenRevoke,
    /// List another user's API tokens (security administrators).
    UserTokenList,
    /// Revoke another user's API token (security administrators).
    UserTokenRevoke,
    /// Export the client list (CSV or XLSX), masked unless the caller may reveal.
    ClientExport,
    /// Import clients from a CSV or XLSX file.
    ClientImport,
    /// Assign a client to an accountant or team.
    ClientAssign,
    ContactList,
    /// Exact search of contacts by mobile or ID number.
    ContactSearch,
    ContactCreate,
    ContactUpdate,
    ContactDelete,
    ContractList,
    ContractCreate,
    /// Change a contract or attach its signed PDF.
    ContractUpdate,
    ContractDelete,
    FinancialList,
    FinancialCreate,
    FinancialUpdate,
    FilingList,
    /// The deadlines dashboard: what is due soon and what is overdue.
    FilingDue,
    /// Generate a year's filing tasks from the filing calendar.
    FilingGenerate,
    FilingUpdate,
    /// Interactions of a client, and follow-ups due.
    InteractionList,
    InteractionCreate,
    InteractionUpdate,
    DocumentList,
    DocumentUpload,
    /// Download a document; an audited sensitive read.
    DocumentDownload,
    DocumentDelete,
    /// Custody items of a client, and overdue returns.
    CustodyList,
    CustodyCreate,
    /// Check a custody item out or back in.
    CustodyMove,
    /// Payments, and the fees and arrears of contracts.
    PaymentList,
    PaymentCreate,
    LeadList,
    LeadCreate,
    LeadUpdate,
    /// Turn a won lead into a client.
    LeadConvert,
    /// Backups, restore tests and drills: when, outcome, size, recovery point and time.
    BackupList,
    /// Take a backup now and copy it to the configured targets.
    BackupNow,
    /// Restore the newest backup into a scratch database and check it now.
    RestoreTestRun,
}

/// What a caller must hold to perform an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// Anyone, signed in or not.
    Public,
    /// A session whose password was right, even while its second factor is still owed:
    /// completing the sign-in, asking who one is, signing out.
    PasswordVerified,
    /// Any signed-in user, even one who still has to replace a one-time password or enrol an
    /// authenticator.
    SignedIn,
    /// A signed-in user whose role holds this permission.
    Permission(Permission),
}

impl Operation {
    pub const ALL: [Operation; 93] = [
        Operation::PublicDocument,
        Operation::Login,
        Operation::Logout,
        Operation::WhoAmI,
        Operation::ChangeOwnPassword,
        Operation::ClientList,
        Operation::ClientSearch,
        Operation::ClientCreate,
        Operation::ClientRead,
        Operation::ClientUpdate,
        Operation::ErasureRequest,
        Operation::ErasureList,
        Operation::ErasureDecide,
        Operation::AuditSearch,
        Operation::AlertList,
        Operation::AlertUpdate,
        Operation::RoleChange,
        Operation::TeamChange,
        Operation::CustomRoleList,
        Operation::CustomRoleSave,
        Operation::CustomRoleDelete,
        Operation::TeamReviewRead,
        Operation::TeamReviewAnswer,
        Operation::KeyStatus,
        Operation::SecurityPosture,
        Operation::KeyRotate,
        Operation::KeyReencrypt,
        Operation::KeyReindex,
        Operation::KeyJobStatus,
        Operation::ReassignmentList,
        Operation::ReassignmentDecide,
        Operation::EffectivePermissions,
        Operation::ReviewManage,
        Operation::ReviewRead,
        Operation::ClientReveal,
        Operation::LoginSecondFactor,
        Operation::StepUp,
        Operation::MfaStatus,
        Operation::MfaEnrol,
        Operation::RecoveryCodesRegenerate,
        Operation::OwnSessionList,
        Operation::OwnSessionRevoke,
        Operation::UserSessionsRevoke,
        Operation::SecurityKeyList,
        Operation::SecurityKeyRegister,
        Operation::SecurityKeyRename,
        Operation::SecurityKeyRemove,
        Operation::UserSecurityKeyList,
        Operation::UserSecurityKeyRemove,
        Operation::PasskeyLogin,
        Operation::TokenCreate,
        Operation::OwnTokenList,
        Operation::OwnTokenRevoke,
        Operation::UserTokenList,
        Operation::UserTokenRevoke,
        Operation::ClientExport,
        Operation::ClientImport,
        Operation::ClientAssign,
        Operation::ContactList,
        Operation::ContactSearch,
        Operation::ContactCreate,
        Operation::ContactUpdate,
        Operation::ContactDelete,
        Operation::ContractList,
        Operation::ContractCreate,
        Operation::ContractUpdate,
        Operation::ContractDelete,
        Operation::FinancialList,
        Operation::FinancialCreate,
        Operation::FinancialUpdate,
        Operation::FilingList,
        Operation::FilingDue,
        Operation::FilingGenerate,
        Operation::FilingUpdate,
        Operation::InteractionList,
        Operation::InteractionCreate,
        Operation::InteractionUpdate,
        Operation::DocumentList,
        Operation::DocumentUpload,
        Operation::DocumentDownload,
        Operation::DocumentDelete,
        Operation::CustodyList,
        Operation::CustodyCreate,
        Operation::CustodyMove,
        Operation::PaymentList,
        Operation::PaymentCreate,
        Operation::LeadList,
        Operation::LeadCreate,
        Operation::LeadUpdate,
        Operation::LeadConvert,
        Operation::BackupList,
        Operation::BackupNow,
        Operation::RestoreTestRun,
    ];

    pub fn requirement(self) -> Requirement {
        use Requirement::*;
        let client = |action| Permission(crate::Permission::new(Resource::Client, action));
        let on = |resource, action| Permission(crate::Permission::new(resource, action));
        match self {
            Operation::PublicDocument | Operation::Login | Operation::PasskeyLogin => Public,
            Operation::Logout | Operation::WhoAmI | Operation::LoginSecondFactor => {
                PasswordVerified
            }
            Operation::ChangeOwnPassword
            | Operation::StepUp
            | Operation::MfaStatus
            | Operation::MfaEnrol
            | Operation::RecoveryCodesRegenerate
            | Operation::OwnSessionList
            | Operation::OwnSessionRevoke
            | Operation::SecurityKeyList
            | Operation::SecurityKeyRegister
            | Operation::SecurityKeyRename
            | Operation::SecurityKeyRemove
            | Operation::TokenCreate
            | Operation::OwnTokenList
            | Operation::OwnTokenRevoke => SignedIn,
            Operation::UserSessionsRevoke
            | Operation::UserTokenRevoke
            | Operation::UserSecurityKeyRemove => Permission(crate::Permission::new(
                Resource::SecurityPolicy,
                Action::Update,
            )),
            Operation::UserTokenList | Operation::UserSecurityKeyList => Permission(
                crate::Permission::new(Resource::SecurityPolicy, Action::Read),
            ),
            Operation::ClientList | Operation::ClientSearch | Operation::ClientRead => {
                client(Action::Read)
            }
            Operation::ClientCreate => client(Action::Create),
            Operation::ClientUpdate => client(Action::Update),
            Operation::ErasureRequest => client(Action::Delete),
            Operation::ErasureList | Operation::ErasureDecide => client(Action::Approve),
            Operation::ClientReveal => client(Action::Reveal),
            Operation::AuditSearch => {
                Permission(crate::Permission::new(Resource::AuditLog, Action::Read))
            }
            Operation::AlertList => {
                Permission(crate::Permission::new(Resource::Alert, Action::Read))
            }
            Operation::AlertUpdate => {
                Permission(crate::Permission::new(Resource::Alert, Action::Update))
            }
            Operation::RoleChange
            | Operation::TeamChange
            | Operation::CustomRoleSave
            | Operation::CustomRoleDelete => Permission(crate::Permission::new(
                Resource::RoleAssignment,
                Action::Update,
            )),
            Operation::EffectivePermissions | Operation::ReviewRead | Operation::CustomRoleList => {
                Permission(crate::Permission::new(
                    Resource::RoleAssignment,
                    Action::Read,
                ))
            }
            Operation::ReviewManage => Permission(crate::Permission::new(
                Resource::RoleAssignment,
                Action::Update,
            )),
            Operation::ClientExport => on(Resource::Client, Action::Export),
            Operation::ClientImport => on(Resource::Client, Action::Create),
            Operation::ClientAssign => on(Resource::ClientAssignment, Action::Update),
            Operation::ReassignmentList | Operation::ReassignmentDecide => {
                on(Resource::ClientAssignment, Action::Approve)
            }
            Operation::KeyStatus | Operation::KeyJobStatus => on(Resource::Keys, Action::Read),
            Operation::SecurityPosture => on(Resource::SecurityPolicy, Action::Read),
            Operation::KeyRotate | Operation::KeyReencrypt | Operation::KeyReindex => {
                on(Resource::Keys, Action::Update)
            }
            Operation::TeamReviewRead | Operation::TeamReviewAnswer => {
                on(Resource::RoleAssignment, Action::Approve)
            }
            Operation::ContactList => on(Resource::Contact, Action::Read),
            Operation::ContactSearch => on(Resource::Contact, Action::Read),
            Operation::ContactCreate => on(Resource::Contact, Action::Create),
            Operation::ContactUpdate => on(Resource::Contact, Action::Update),
            Operation::ContactDelete => on(Resource::Contact, Action::Delete),
            Operation::ContractList => on(Resource::Contract, Action::Read),
            Operation::ContractCreate => on(Resource::Contract, Action::Create),
            Operation::ContractUpdate => on(Resource::Contract, Action::Update),
            Operation::ContractDelete => on(Resource::Contract, Action::Delete),
            Operation::FinancialList => on(Resource::FinancialRecord, Action::Read),
            Operation::FinancialCreate => on(Resource::FinancialRecord, Action::Create),
            Operation::FinancialUpdate => on(Resource::FinancialRecord, Action::Update),
            Operation::FilingList => on(Resource::FilingTask, Action::Read),
            Operation::FilingDue => on(Resource::FilingTask, Action::Read),
            Operation::FilingGenerate => on(Resource::FilingTask, Action::Create),
            Operation::FilingUpdate => on(Resource::FilingTask, Action::Update),
            Operation::InteractionList => on(Resource::Interaction, Action::Read),
            Operation::InteractionCreate => on(Resource::Interaction, Action::Create),
            Operation::InteractionUpdate => on(Resource::Interaction, Action::Update),
            Operation::DocumentList => on(Resource::Document, Action::Read),
            Operation::DocumentUpload => on(Resource::Document, Action::Create),
            Operation::DocumentDownload => on(Resource::Document, Action::Read),
            Operation::DocumentDelete => on(Resource::Document, Action::Delete),
            Operation::CustodyList => on(Resource::Custody, Action::Read),
            Operation::CustodyCreate => on(Resource::Custody, Action::Create),
            Operation::CustodyMove => on(Resource::Custody, Action::Update),
            Operation::PaymentList => on(Resource::Payment, Action::Read),
            Operation::PaymentCreate => on(Resource::Payment, Action::Create),
            Operation::LeadList => on(Resource::Lead, Action::Read),
            Operation::LeadCreate => on(Resource::Lead, Action::Create),
            Operation::LeadUpdate => on(Resource::Lead, Action::Update),
            Operation::LeadConvert => on(Resource::Lead, Action::Update),
            Operation::BackupList => on(Resource::Backup, Action::Read),
            Operation::BackupNow | Operation::RestoreTestRun => {
                on(Resource::Backup, Action::Create)
            }
        }
    }

    /// An API token may carry this operation: data work its owner's role permits, never a
    /// critical operation (no second factor stands behind a token) and never the management
    /// of identities, sessions or the security policy, so a leaked token cannot entrench itself.
    pub fn open_to_api_tokens(self) -> bool {
        match self.requirement() {
            Requirement::Permission(p) => {
                !self.needs_fresh_second_factor()
                    && !matches!(
                        p.resource,
                        Resource::RoleAssignment
                            | Resource::User
                            | Resource::SecurityPolicy
                            | Resource::SystemConfig
                            | Resource::Keys
                    )
            }
            _ => false,
        }
    }

    /// Critical operations need a second factor verified within the last few minutes
    /// (DESIGN.md, invariant 6): revealing data, exporting it, changing who may do what,
    /// backup and restore (a backup holds every client's data; a restore test opens all of it),
    /// and both halves of destroying a client's key.
    pub fn needs_fresh_second_factor(self) -> bool {
        match self {
            Operation::ErasureRequest
            | Operation::ErasureDecide
            | Operation::RoleChange
            | Operation::TeamChange
            | Operation::CustomRoleSave
            | Operation::CustomRoleDelete
            | Operation::ReassignmentDecide
            | Operation::TeamReviewAnswer
            | Operation::KeyRotate
            | Operation::KeyReencrypt
            | Operation::KeyReindex
            | Operation::ReviewManage
            | Operation::ClientReveal
            | Operation::ClientExport
            | Operation::TokenCreate
            | Operation::RecoveryCodesRegenerate
            | Operation::BackupNow
            | Operation::RestoreTestRun
            | Operation::UserSecurityKeyRemove => true,
            Operation::PublicDocument
            | Operation::Login
            | Operation::Logout
            | Operation::WhoAmI
            | Operation::ChangeOwnPassword
            | Operation::ClientList
            | Operation::ClientSearch
            | Operation::ClientCreate
            | Operation::ClientRead
            | Operation::ClientUpdate
            | Operation::ErasureList
            | Operation::AuditSearch
            | Operation::AlertList
            | Operation::AlertUpdate
            | Operation::EffectivePermissions
            | Operation::CustomRoleList
            | Operation::ReassignmentList
            | Operation::KeyStatus
            | Operation::KeyJobStatus
            | Operation::SecurityPosture
            | Operation::TeamReviewRead
            | Operation::ReviewRead
            | Operation::LoginSecondFactor
            | Operation::StepUp
            | Operation::MfaStatus
            | Operation::MfaEnrol
            | Operation::OwnSessionList
            | Operation::OwnSessionRevoke
            | Operation::UserSessionsRevoke
            | Operation::SecurityKeyList
            | Operation::SecurityKeyRegister
            | Operation::SecurityKeyRename
            | Operation::SecurityKeyRemove
            | Operation::UserSecurityKeyList
            | Operation::PasskeyLogin
            | Operation::OwnTokenList
            | Operation::OwnTokenRevoke
            | Operation::UserTokenList
            | Operation::UserTokenRevoke
            | Operation::ClientImport
            | Operation::ClientAssign
            | Operation::ContactList
            | Operation::ContactSearch
            | Operation::ContactCreate
            | Operation::ContactUpdate
            | Operation::ContactDelete
            | Operation::ContractList
            | Operation::ContractCreate
            | Operation::ContractUpdate
            | Operation::ContractDelete
            | Operation::FinancialList
            | Operation::FinancialCreate
            | Operation::FinancialUpdate
            | Operation::FilingList
            | Operation::FilingDue
            | Operation::FilingGenerate
            | Operation::FilingUpdate
            | Operation::InteractionList
            | Operation::InteractionCreate
            | Operation::InteractionUpdate
            | Operation::DocumentList
            | Operation::DocumentUpload
            | Operation::DocumentDownload
            | Operation::DocumentDelete
            | Operation::CustodyList
            | Operation::CustodyCreate
            | Operation::CustodyMove
            | Operation::PaymentList
            | Operation::PaymentCreate
            | Operation::LeadList
            | Operation::LeadCreate
            | Operation::LeadUpdate
            | Operation::LeadConvert
            | Operation::BackupList => false,
        }
    }

    /// Operations a user with a one-time password may still perform, so that they can replace
    /// it; the same ones are open to a user who must first enrol an authenticator.
    pub fn allowed_before_password_change(self) -> bool {
        matches!(
            self.requirement(),
            Requirement::Public | Requirement::PasswordVerified | Requirement::SignedIn
        )
    }

    /// Operations open to a session whose second factor is still owed.
    pub fn allowed_before_second_factor(self) -> bool {
        matches!(
            self.requirement(),
            Requirement::Public | Requirement::PasswordVerified
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::PublicDocument => "public_document",
            Operation::Login => "login",
            Operation::Logout => "logout",
            Operation::WhoAmI => "who_am_i",
            Operation::ChangeOwnPassword => "change_own_password",
            Operation::ClientList => "client_list",
            Operation::ClientSearch => "client_search",
            Operation::ClientCreate => "client_create",
            Operation::ClientRead => "client_read",
            Operation::ClientUpdate => "client_update",
            Operation::ErasureRequest => "erasure_request",
            Operation::ErasureList => "erasure_list",
            Operation::ErasureDecide => "erasure_decide",
            Operation::ClientReveal => "client_reveal",
            Operation::AuditSearch => "audit_search",
            Operation::AlertList => "alert_list",
            Operation::AlertUpdate => "alert_update",
            Operation::RoleChange => "role_change",
            Operation::TeamChange => "team_change",
            Operation::CustomRoleList => "custom_role_list",
            Operation::CustomRoleSave => "custom_role_save",
            Operation::CustomRoleDelete => "custom_role_delete",
            Operation::ReassignmentList => "reassignment_list",
            Operation::KeyStatus => "key_status",
            Operation::SecurityPosture => "security_posture",
            Operation::KeyRotate => "key_rotate",
            Operation::KeyReencrypt => "key_reencrypt",
            Operation::KeyReindex => "key_reindex",
            Operation::KeyJobStatus => "key_job_status",
            Operation::TeamReviewRead => "team_review_read",
            Operation::TeamReviewAnswer => "team_review_answer",
            Operation::ReassignmentDecide => "reassignment_decide",
            Operation::EffectivePermissions => "effective_permissions",
            Operation::ReviewManage => "review_manage",
            Operation::ReviewRead => "review_read",
            Operation::LoginSecondFactor => "login_second_factor",
            Operation::StepUp => "step_up",
            Operation::MfaStatus => "mfa_status",
            Operation::MfaEnrol => "mfa_enrol",
            Operation::RecoveryCodesRegenerate => "recovery_codes_regenerate",
            Operation::OwnSessionList => "own_session_list",
            Operation::OwnSessionRevoke => "own_session_revoke",
            Operation::UserSessionsRevoke => "user_sessions_revoke",
            Operation::SecurityKeyList => "security_key_list",
            Operation::SecurityKeyRegister => "security_key_register",
            Operation::SecurityKeyRename => "security_key_rename",
            Operation::SecurityKeyRemove => "security_key_remove",
            Operation::UserSecurityKeyList => "user_security_key_list",
            Operation::UserSecurityKeyRemove => "user_security_key_remove",
            Operation::PasskeyLogin => "passkey_login",
            Operation::TokenCreate => "token_create",
            Operation::OwnTokenList => "own_token_list",
            Operation::OwnTokenRevoke => "own_token_revoke",
            Operation::UserTokenList => "user_token_list",
            Operation::UserTokenRevoke => "user_token_revoke",
            Operation::ClientExport => "client_export",
            Operation::ClientImport => "client_import",
            Operation::ClientAssign => "client_assign",
            Operation::ContactList => "contact_list",
            Operation::ContactSearch => "contact_search",
            Operation::ContactCreate => "contact_create",
            Operation::ContactUpdate => "contact_update",
            Operation::ContactDelete => "contact_delete",
            Operation::ContractList => "contract_list",
            Operation::ContractCreate => "contract_create",
            Operation::ContractUpdate => "contract_update",
            Operation::ContractDelete => "contract_delete",
            Operation::FinancialList => "financial_list",
            Operation::FinancialCreate => "financial_create",
            Operation::FinancialUpdate => "financial_update",
            Operation::FilingList => "filing_list",
            Operation::FilingDue => "filing_due",
            Operation::FilingGenerate => "filing_generate",
            Operation::FilingUpdate => "filing_update",
            Operation::InteractionList => "interaction_list",
            Operation::InteractionCreate => "interaction_create",
            Operation::InteractionUpdate => "interaction_update",
            Operation::DocumentList => "document_list",
            Operation::DocumentUpload => "document_upload",
            Operation::DocumentDownload => "document_download",
            Operation::DocumentDelete => "document_delete",
            Operation::CustodyList => "custody_list",
            Operation::CustodyCreate => "custody_create",
            Operation::CustodyMove => "custody_move",
            Operation::PaymentList => "payment_list",
            Operation::PaymentCreate => "payment_create",
            Operation::LeadList => "lead_list",
            Operation::LeadCreate => "lead_create",
            Operation::LeadUpdate => "lead_update",
            Operation::LeadConvert => "lead_convert",
            Operation::BackupList => "backup_list",
            Operation::BackupNow => "backup_now",
            Operation::RestoreTestRun => "restore_test_run",
        }
    }
}
