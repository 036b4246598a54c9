use zf_policy::Scope;

/// The row filter every client query carries, as two bound parameters: a kind (0 all, 1 assigned
/// to a user, 2 nothing, 3 the clients of a user's audit engagements) and the user. Keeping the SQL text static lets both stores cache it.
pub(crate) fn params(scope: Scope) -> (i64, Option<String>) {
    match scope {
        Scope::All => (0, None),
        Scope::AssignedTo(user) => (1, Some(user.to_string())),
        Scope::None => (2, None),
        Scope::Engaged(user) => (3, Some(user.to_string())),
    }
}
