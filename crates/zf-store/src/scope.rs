use zf_policy::{Scope, Within};

/// The row filter every client query carries, as two bound parameters: a kind and a user or
/// token id. Kinds: 0 all, 1 assigned to the user, 2 nothing, 3 the clients of the user's
/// audit engagements, 4–6 and 8 the clients an API token names — within everything (4), within
/// those assigned to its owner (5), within its owner's engagements (6), within its owner's team
/// (8) — and 7 the clients of the user's team or assigned to the user. The team is read from
/// the user's row inside the query, so a team change applies to the very next one. Keeping the SQL text
/// static lets both stores cache it; the filter's text is [`sqlite_filter`] and
/// [`postgres_filter`], shared by every query over clients `c`.
pub(crate) fn params(scope: Scope) -> (i64, Option<String>) {
    match scope {
        Scope::All => (0, None),
        Scope::AssignedTo(user) => (1, Some(user.to_string())),
        Scope::None => (2, None),
        Scope::Engaged(user) => (3, Some(user.to_string())),
        Scope::Team(user) => (7, Some(user.to_string())),
        Scope::Listed { token, within } => {
            let kind = match within {
                Within::All => 4,
                Within::AssignedToOwner => 5,
                Within::EngagedOfOwner => 6,
                Within::TeamOfOwner => 8,
            };
            (kind, Some(token.to_string()))
        }
    }
}

/// The scope filter over clients `c` in SQLite's parameter style (`?1` kind, `?2` id).
macro_rules! sqlite_filter {
    () => {
        "(?1 = 0 OR (?1 = 1 AND c.assigned_accountant = ?2)
        OR (?1 = 3 AND c.id IN (SELECT client_id FROM client_engagements WHERE user_id = ?2))
        OR (?1 = 7 AND (c.assigned_accountant = ?2
            OR c.team = (SELECT tu.team FROM users tu WHERE tu.id = ?2)))
        OR (?1 IN (4, 5, 6, 8) AND c.id IN (SELECT tc.client_id FROM api_token_clients tc
            JOIN api_tokens t ON t.id = tc.token_id WHERE tc.token_id = ?2
            AND (?1 = 4 OR (?1 = 5 AND c.assigned_accountant = t.user_id)
                OR (?1 = 6 AND c.id IN (SELECT e.client_id FROM client_engagements e
                    WHERE e.user_id = t.user_id))
                OR (?1 = 8 AND (c.assigned_accountant = t.user_id
                    OR c.team = (SELECT tu.team FROM users tu WHERE tu.id = t.user_id)))))))"
    };
}

/// The same filter in PostgreSQL's parameter style (`$1` kind, `$2` id).
macro_rules! postgres_filter {
    () => {
        "($1::BIGINT = 0 OR ($1::BIGINT = 1 AND c.assigned_accountant = $2)
        OR ($1::BIGINT = 3 AND c.id IN (SELECT client_id FROM client_engagements WHERE user_id = $2))
        OR ($1::BIGINT = 7 AND (c.assigned_accountant = $2
            OR c.team = (SELECT tu.team FROM users tu WHERE tu.id = $2)))
        OR ($1::BIGINT IN (4, 5, 6, 8) AND c.id IN (SELECT tc.client_id FROM api_token_clients tc
            JOIN api_tokens t ON t.id = tc.token_id WHERE tc.token_id = $2
            AND ($1::BIGINT = 4 OR ($1::BIGINT = 5 AND c.assigned_accountant = t.user_id)
                OR ($1::BIGINT = 6 AND c.id IN (SELECT e.client_id FROM client_engagements e
                    WHERE e.user_id = t.user_id))
                OR ($1::BIGINT = 8 AND (c.assigned_accountant = t.user_id
                    OR c.team = (SELECT tu.team FROM users tu WHERE tu.id = t.user_id)))))))"
    };
}

pub(crate) use {postgres_filter, sqlite_filter};

/// The narrowest text equivalent to [`sqlite_filter`] for one kind, for queries that visit many
/// clients (counts). The general filter is one OR over every kind, which SQLite can only test
/// row by row: counting a firm of 100,000 clients read the whole table (33 ms), and counting an
/// accountant's clients could not use `clients_assigned`. Binds ?1 and ?2 as the general one.
pub(crate) fn sqlite_filter_for(kind: i64) -> &'static str {
    match kind {
        0 => "(?1 = 0 AND ?2 IS NULL)",
        1 => "(?1 = 1 AND c.assigned_accountant = ?2)",
        2 => "(?1 = 2 AND ?2 IS NULL AND 0)",
        7 => {
            "(?1 = 7 AND (c.assigned_accountant = ?2
            OR c.team = (SELECT tu.team FROM users tu WHERE tu.id = ?2)))"
        }
        _ => sqlite_filter!(),
    }
}
