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
    ClientDelete,
    /// Search and read the audit log.
    AuditSearch,
    /// The alert console.
    AlertList,
    AlertUpdate,
    /// Change a user's role (job transfer).
    RoleChange,
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
    /// List one's own sessions.
    OwnSessionList,
    /// End one of one's own sessions.
    OwnSessionRevoke,
    /// End every session of another user (security administrators).
    UserSessionsRevoke,
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
    pub const ALL: [Operation; 26] = [
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
        Operation::ClientDelete,
        Operation::AuditSearch,
        Operation::AlertList,
        Operation::AlertUpdate,
        Operation::RoleChange,
        Operation::EffectivePermissions,
        Operation::ReviewManage,
        Operation::ReviewRead,
        Operation::ClientReveal,
        Operation::LoginSecondFactor,
        Operation::StepUp,
        Operation::MfaStatus,
        Operation::MfaEnrol,
        Operation::OwnSessionList,
        Operation::OwnSessionRevoke,
        Operation::UserSessionsRevoke,
    ];

    pub fn requirement(self) -> Requirement {
        use Requirement::*;
        let client = |action| Permission(crate::Permission::new(Resource::Client, action));
        match self {
            Operation::PublicDocument | Operation::Login => Public,
            Operation::Logout | Operation::WhoAmI | Operation::LoginSecondFactor => {
                PasswordVerified
            }
            Operation::ChangeOwnPassword
            | Operation::StepUp
            | Operation::MfaStatus
            | Operation::MfaEnrol
            | Operation::OwnSessionList
            | Operation::OwnSessionRevoke => SignedIn,
            Operation::ClientList | Operation::ClientSearch | Operation::ClientRead => {
                client(Action::Read)
            }
            Operation::ClientCreate => client(Action::Create),
            Operation::ClientUpdate => client(Action::Update),
            Operation::ClientDelete => client(Action::Delete),
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
            Operation::RoleChange => Permission(crate::Permission::new(
                Resource::RoleAssignment,
                Action::Update,
            )),
            Operation::EffectivePermissions | Operation::ReviewRead => Permission(
                crate::Permission::new(Resource::RoleAssignment, Action::Read),
            ),
            Operation::ReviewManage => Permission(crate::Permission::new(
                Resource::RoleAssignment,
                Action::Update,
            )),
            Operation::UserSessionsRevoke => Permission(crate::Permission::new(
                Resource::SecurityPolicy,
                Action::Update,
            )),
        }
    }

    /// Critical operations need a second factor verified within the last few minutes
    /// (DESIGN.md, invariant 6): revealing data, and changing who may do what.
    pub fn needs_fresh_second_factor(self) -> bool {
        match self {
            Operation::ClientReveal | Operation::RoleChange | Operation::ReviewManage => true,
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
            | Operation::ClientDelete
            | Operation::AuditSearch
            | Operation::AlertList
            | Operation::AlertUpdate
            | Operation::EffectivePermissions
            | Operation::ReviewRead
            | Operation::LoginSecondFactor
            | Operation::StepUp
            | Operation::MfaStatus
            | Operation::MfaEnrol
            | Operation::OwnSessionList
            | Operation::OwnSessionRevoke
            | Operation::UserSessionsRevoke => false,
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
            Operation::ClientDelete => "client_delete",
            Operation::ClientReveal => "client_reveal",
            Operation::AuditSearch => "audit_search",
            Operation::AlertList => "alert_list",
            Operation::AlertUpdate => "alert_update",
            Operation::RoleChange => "role_change",
            Operation::EffectivePermissions => "effective_permissions",
            Operation::ReviewManage => "review_manage",
            Operation::ReviewRead => "review_read",
            Operation::LoginSecondFactor => "login_second_factor",
            Operation::StepUp => "step_up",
            Operation::MfaStatus => "mfa_status",
            Operation::MfaEnrol => "mfa_enrol",
            Operation::OwnSessionList => "own_session_list",
            Operation::OwnSessionRevoke => "own_session_revoke",
            Operation::UserSessionsRevoke => "user_sessions_revoke",
        }
    }
}
