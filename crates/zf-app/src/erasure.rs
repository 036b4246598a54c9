//! The erasure ledger: an erased client must stay erased, including after a restore of a
//! backup taken before the erasure. The ledger is kept twice — in the database
//! (`client_erasures`, written in the erasing transaction, so it travels with every later
//! backup) and in a file in the data directory (`erasures.ledger`, appended and synced after
//! the commit), which survives losing the database itself. A restore re-applies both.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_domain::ClientId;
use zf_policy::Scope;

use crate::{App, AppError};

/// The ledger file's name in the data directory.
pub const LEDGER_FILE: &str = "erasures.ledger";

/// Appends one erased client to the ledger file and syncs it.
pub(crate) fn append(path: &Path, id: ClientId, at_ms: i64) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{id} {at_ms}")?;
    file.sync_all()
}

/// The clients the ledger file names; no file, no erasures. A line that does not parse is an
/// error, not skipped: a damaged ledger must not quietly let a client come back.
pub fn read_ledger(path: &Path) -> Result<Vec<ClientId>, AppError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(AppError::Internal(format!(
                "cannot read the erasure ledger {}: {e}",
                path.display()
            )))
        }
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            line.split_whitespace()
                .next()
                .and_then(|id| ClientId::parse(id).ok())
                .ok_or_else(|| {
                    AppError::Internal(format!(
                        "the erasure ledger {} is damaged at line {}",
                        path.display(),
                        n + 1
                    ))
                })
        })
        .collect()
}

impl App {
    /// Keeps a copy of the erasure ledger in `path` besides the database's.
    pub fn with_erasure_ledger(mut self, path: PathBuf) -> Self {
        self.erasure_ledger = Some(std::sync::Arc::new(path));
        self
    }

    /// Records an erasure just committed in the ledger file. The database's ledger already
    /// has it; a failure here is logged loudly rather than undoing the erasure.
    pub(crate) fn ledger_erasure(&self, id: ClientId, at_ms: i64) {
        if let Some(path) = &self.erasure_ledger {
            if let Err(e) = append(path, id, at_ms) {
                tracing::error!(client = %id, path = %path.display(), error = %e,
                    "the erasure is committed but could not be added to the ledger file");
            }
        }
    }

    /// The erased clients this instance knows of: the database's ledger and the file's.
    pub async fn erasures_known(&self) -> Result<BTreeSet<ClientId>, AppError> {
        let mut known: BTreeSet<ClientId> = self
            .store
            .client_erasures()
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if let Some(path) = &self.erasure_ledger {
            known.extend(read_ledger(path)?);
        }
        Ok(known)
    }

    /// Erases again every client of `ledger` that a restore brought back, each with its audit
    /// event; returns how many there were.
    pub async fn erasures_reapply(
        &self,
        ledger: &BTreeSet<ClientId>,
        operator: Actor,
    ) -> Result<usize, AppError> {
        let mut again = 0;
        for id in ledger {
            if self.store.client_get(Scope::All, *id).await?.is_none() {
                continue;
            }
            let event = AuditEvent::new(
                self.now_ms(),
                operator.clone(),
                AuditAction::ErasureReapplied,
                Outcome::Success,
            )
            .on("client", *id)
            .detail("erased before the backup was restored; erased again");
            self.store.client_delete(Scope::All, *id, event).await?;
            again += 1;
        }
        Ok(again)
    }
}
