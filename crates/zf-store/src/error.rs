/// Which uniqueness rule a write broke, so the edge can say so in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unique {
    Username,
    ClientUscc,
    /// The user already has a confirmed authenticator.
    MfaEnrolled,
    /// The security key is registered already (by this user or another).
    WebauthnCredential,
    /// A custom role of that name exists.
    CustomRole,
    /// A request to erase the client is pending already.
    ErasurePending,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a record with the same {0:?} already exists")]
    Conflict(Unique),
    #[error("record not found")]
    NotFound,
    #[error("the role is held by {0} user(s); move them to another role first")]
    RoleHeld(i64),
    #[error("the record was changed by someone else; reload it and try again")]
    VersionConflict,
    #[error("the person who made the request cannot approve it")]
    SamePerson,
    #[error("the database schema is at version {found}, newer than this binary knows ({known}); refusing to downgrade")]
    NewerSchema { found: i64, known: i64 },
    #[error("stored value in {column} cannot be read back: {reason}")]
    Corrupt {
        column: &'static str,
        reason: String,
    },
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("SQLite connection pool: {0}")]
    SqlitePool(#[from] r2d2::Error),
    /// The driver's error with its causes in one line (not as a source: callers printing the
    /// chain would print every cause twice).
    #[error("PostgreSQL: {}", pg_detail(.0))]
    Postgres(tokio_postgres::Error),
    #[error("PostgreSQL connection pool: {0}")]
    PostgresPool(String),
    #[error("database configuration: {0}")]
    Config(String),
    #[error("storage worker stopped: {0}")]
    Worker(String),
    #[error("backup or restore: {0}")]
    Backup(String),
    #[error("the restore was stopped before it was complete; nothing was written")]
    RestoreAborted,
    #[error("the target database already holds data (in {}); a restore writes only into an empty one", .0.join(", "))]
    TargetNotEmpty(Vec<&'static str>),
}

impl StoreError {
    pub(crate) fn corrupt(column: &'static str, reason: impl ToString) -> Self {
        StoreError::Corrupt {
            column,
            reason: reason.to_string(),
        }
    }
}

/// `tokio_postgres::Error` displays only "db error"; the server's own message is what an
/// operator needs in the log.
impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Postgres(e)
    }
}

fn pg_detail(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let message = c.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = c.source();
    }
    text
}
