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
}

/// What a caller must hold to perform an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in user, even one who still has to replace a one-time password.
    SignedIn,
    /// A signed-in user whose role holds this permission.
    Permission(Permission),
}

impl Operation {
    pub const ALL: [Operation; 19] = [
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
    ];

    pub fn requirement(self) -> Requirement {
        use Requirement::*;
        let client = |action| Permission(crate::Permission::new(Resource::Client, action));
        match self {
            Operation::PublicDocument | Operation::Login => Public,
            Operation::Logout | Operation::WhoAmI | Operation::ChangeOwnPassword => SignedIn,
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
        }
    }

    /// Operations a user with a one-time password may still perform, so that they can replace it.
    pub fn allowed_before_password_change(self) -> bool {
        matches!(
            self.requirement(),
            Requirement::Public | Requirement::SignedIn
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
        }
    }
}
