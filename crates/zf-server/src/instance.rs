//! One deployment's pieces put together: the data directory, the keys (from the configured
//! [`KeyProvider`]), the store and the application. The CLI's `serve` and every data subcommand open an instance the same way.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zf_app::{App, AppConfig, AppError};
use zf_crypto::{KekSource, KeyFileError};

use crate::key_provider::{Init, KeyProvider, NoPrompt};
use zf_store::{PgStore, SqliteStore, Store, StoreError};

/// Where the data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseChoice {
    /// The embedded database file (default: `<data>/zhangfang.db`).
    Sqlite(PathBuf),
    /// A `postgres://` URL shared by several nodes.
    Postgres(String),
}

impl DatabaseChoice {
    /// Reads `--database`: absent means the embedded default; otherwise a `postgres://`,
    /// `postgresql://` or `sqlite://<path>` URL.
    pub fn parse(data_dir: &Path, url: Option<&str>) -> Result<Self, InstanceError> {
        match url.map(str::trim) {
            None | Some("") => Ok(DatabaseChoice::Sqlite(data_dir.join("zhangfang.db"))),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(DatabaseChoice::Postgres(u.to_owned()))
            }
            Some(u) => match u.strip_prefix("sqlite://") {
                Some(path) if !path.is_empty() => Ok(DatabaseChoice::Sqlite(PathBuf::from(path))),
                _ => Err(InstanceError::DatabaseUrl),
            },
        }
    }

    /// For logs: never the password of a PostgreSQL URL.
    pub fn describe(&self) -> String {
        match self {
            DatabaseChoice::Sqlite(p) => format!("SQLite at {}", p.display()),
            DatabaseChoice::Postgres(url) => {
                let host = url.rsplit_once('@').map_or(url.as_str(), |(_, h)| h);
                let host = host.split('?').next().unwrap_or(host);
                format!("PostgreSQL at {host}")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("cannot create the data directory {path}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the data directory {path} is accessible to other users (mode {mode:o}); run: chmod 700 {path}")]
    DataDirPermissions { path: PathBuf, mode: u32 },
    #[error(transparent)]
    MasterKey(#[from] KeyFileError),
    #[error(transparent)]
    Passphrase(#[from] zf_crypto::PassphraseError),
    #[error("cannot read the passphrase: {0}")]
    PassphraseInput(String),
    #[error("the PKCS#11 token's user PIN must be in the environment variable {variable}, which is not set")]
    TokenPin { variable: String },
    #[error("cannot open the PKCS#11 token")]
    Token(#[from] zf_crypto::TokenError),
    #[error("--database must be a postgres://… or sqlite://<path> URL")]
    DatabaseUrl,
    // The cause is printed after the context, as the error's source (`error: a: b`), so it is
    // not repeated in the message.
    #[error("cannot open the database")]
    Store(#[from] StoreError),
    #[error(transparent)]
    App(#[from] AppError),
}

/// An environment variable that holds the master key instead of `master.key` in the data
/// directory (64 hex digits, or the key file's line), for platforms that hand secrets to a
/// process that way. Unset: the key file.
pub const MASTER_KEY_VARIABLE: &str = "ZHANGFANG_MASTER_KEY";

pub struct Instance {
    pub app: App,
    pub data_dir: PathBuf,
    pub database: DatabaseChoice,
}

/// Creates the data directory owner-only, or checks that an existing one is.
pub fn prepare_data_dir(dir: &Path) -> Result<(), InstanceError> {
    use std::os::unix::fs::PermissionsExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| InstanceError::DataDir {
                path: dir.to_owned(),
                source,
            })?;
    }
    let mode = std::fs::metadata(dir)
        .map_err(|source| InstanceError::DataDir {
            path: dir.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(InstanceError::DataDirPermissions {
            path: dir.to_owned(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

impl Instance {
    pub async fn open(
        data_dir: &Path,
        database: DatabaseChoice,
        config: AppConfig,
    ) -> Result<Instance, InstanceError> {
        prepare_data_dir(data_dir)?;
        let source = KeyProvider::default_from_env().resolve(data_dir, Init::Allowed, &NoPrompt)?;
        Self::open_with(data_dir, database, config, source).await
    }

    /// [`Instance::open`] with keys from `source`, resolved by the caller from the configured
    /// [`KeyProvider`] (see [`prepare_data_dir`], which must have run first).
    pub async fn open_with(
        data_dir: &Path,
        database: DatabaseChoice,
        config: AppConfig,
        source: KekSource,
    ) -> Result<Instance, InstanceError> {
        prepare_data_dir(data_dir)?;
        let store: Arc<dyn Store> = match &database {
            DatabaseChoice::Sqlite(path) => Arc::new(SqliteStore::open(path).await?),
            DatabaseChoice::Postgres(url) => Arc::new(PgStore::connect(url).await?),
        };
        let app = App::with_kek_source(store, source, config)
            .await?
            .with_erasure_ledger(data_dir.join(zf_app::erasure::LEDGER_FILE));
        Ok(Instance {
            app,
            data_dir: data_dir.to_owned(),
            database,
        })
    }
}
