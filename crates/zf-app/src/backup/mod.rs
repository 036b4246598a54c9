//! Backups: a consistent snapshot of every table written as one self-describing file
//! (`format.rs`), verified whole without the store, and restored into an empty database — of
//! either kind — in one transaction, only after the whole file has verified.
//!
//! Everything here runs on the operator's side of the server (the CLI, with the master key in
//! hand); the file never holds a key that opens the database, and sealed fields stay sealed in
//! it, under a second layer of encryption.

mod check;
mod format;
mod key;
mod runs;
mod s3;
mod schedule;
mod target;

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use zf_crypto::{BackupKey, BackupKeyId, BackupStreamError};
use zf_store::{
    restore_feed, FeedItem, RestoreMode, RestoreOutcome, SnapshotItem, Store, StoreError, Value,
};

pub use check::SealedCheck;
pub use format::{ChainHead, Header, Manifest, TableEntry, FORMAT_VERSION, MAGIC};
pub use key::{backup_key_for, read_header};
pub use runs::{BackupOverview, DrillRecord, ManualRun, RunView, RunningView, Step};
pub use s3::{S3Config, S3Target};
pub use schedule::{keep, overdue, BackupConfig, DailyAt, Retention, RTO_OBJECTIVE_MS};
pub use target::{
    backup_name, parse_backup_name, BackupTarget, DirectoryTarget, StoredBackup, TargetError,
};

use crate::{now_ms, App};
use format::{BodyItem, BodyReader, BodyWriter};

const COMPRESSION: &str = "zstd";
/// zstd's default: most of a backup is ciphertext, which no level compresses, so a higher
/// level would only cost time on the plain columns and the audit log.
const ZSTD_LEVEL: i32 = 3;
const IO_BUFFER: usize = 1 << 20;
const FEED_ROWS: usize = 512;
const FEED_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("this is not a Zhangfang backup (it does not start with the ZFBACKUP signature)")]
    NotABackup,
    #[error("backup format version {0} is not one this zhangfang reads (it reads version {FORMAT_VERSION})")]
    UnsupportedVersion(u16),
    #[error("the backup's header is malformed: {0}")]
    BadHeader(String),
    #[error("the backup is sealed with {0}, which this zhangfang does not support")]
    UnsupportedSuite(String),
    #[error(
        "the backup was made under another master key (its backup key is {found}, this \
         instance's is {expected}); restore or verify it with the master key of the instance \
         that made it"
    )]
    WrongKey { found: String, expected: String },
    #[error("the backup's key cannot be recovered: {0}")]
    KeyUnavailable(String),
    #[error("the backup fails verification: {0}")]
    Stream(BackupStreamError),
    #[error("the backup's contents are malformed: {0}")]
    Malformed(String),
    #[error("the backup does not match its manifest: {0}")]
    ManifestMismatch(String),
    #[error(
        "the backup is of schema version {backup}, this zhangfang's is {current}; restore it \
         with the zhangfang version that made it"
    )]
    SchemaVersion { backup: i64, current: i64 },
    #[error("the backup changed while it was being restored: {0}")]
    Changed(String),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("backup worker stopped: {0}")]
    Worker(String),
}

impl BackupError {
    /// An error reading the sealed, compressed body: a stream error (truncation, tampering)
    /// is named as such rather than as an I/O failure.
    fn from_read(e: io::Error) -> Self {
        match BackupStreamError::in_io(&e) {
            Some(s) => BackupError::Stream(s.clone()),
            None if e.kind() == io::ErrorKind::UnexpectedEof => {
                BackupError::Malformed("the body ends early".into())
            }
            None => BackupError::Malformed(format!("cannot decompress the body: {e}")),
        }
    }
}

/// Which quantity a phase counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Rows,
    Bytes,
}

/// Reports the progress of a long run; the CLI draws bars with it.
pub trait Progress: Send + Sync {
    /// A phase begins: `total` of `unit` to go.
    fn phase(&self, label: &str, total: u64, unit: Unit);
    fn advance(&self, done: u64);
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn phase(&self, _: &str, _: u64, _: Unit) {}
    fn advance(&self, _: u64) {}
}

/// A backup just written.
#[derive(Clone, Debug)]
pub struct BackupSummary {
    pub header: Header,
    pub manifest: Manifest,
    /// Bytes in the file.
    pub bytes: u64,
}

/// A backup file that verified: every chunk authenticated, the manifest matched every table.
#[derive(Clone, Debug)]
pub struct VerifiedBackup {
    pub header: Header,
    pub manifest: Manifest,
    pub chunks: u64,
    pub bytes: u64,
}

/// A restore that committed.
#[derive(Clone, Debug)]
pub struct RestoreSummary {
    pub backup: VerifiedBackup,
    pub outcome: RestoreOutcome,
}

struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct Tracked<R> {
    inner: R,
    progress: Arc<dyn Progress>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

fn worker(e: tokio::task::JoinError) -> BackupError {
    BackupError::Worker(e.to_string())
}

impl App {
    /// The fingerprint of this instance's backup key, as backups' headers carry it.
    pub fn backup_key_id(&self) -> BackupKeyId {
        self.keys.backup().id()
    }

    /// Writes a backup of the whole database to `out` from one consistent snapshot, while the
    /// store keeps serving. Returns `out` (flushed, not synced) and what was written. The
    /// caller audits the operation; the event is not part of the snapshot.
    pub async fn backup_write<W: Write + Send + 'static>(
        &self,
        out: W,
        progress: Arc<dyn Progress>,
    ) -> Result<(W, BackupSummary), BackupError> {
        let backup_key_wrapped = self
            .backup_key_wrapped()
            .await
            .map_err(|e| BackupError::KeyUnavailable(e.to_string()))?;
        let mut snapshot = self.store.backup_snapshot().await?;
        let key = self.keys.backup();
        let header = Header {
            backup_id: uuid::Uuid::new_v4().to_string(),
            created_at_ms: now_ms(),
            producer: format!("zhangfang {}", env!("CARGO_PKG_VERSION")),
            cipher_suite: BackupKey::SUITE.name().into(),
            key_id: key.id().to_string(),
            compression: COMPRESSION.into(),
            chunk_bytes: zf_crypto::backup::CHUNK_LEN as u32,
            source_backend: snapshot.info.backend.into(),
            schema_version: snapshot.info.schema_version,
            backup_key_wrapped,
        };
        tokio::task::spawn_blocking(move || {
            progress.phase("backing up", snapshot.info.rows(), Unit::Rows);
            let encoded = header.encode();
            let mut file = Counting {
                inner: BufWriter::with_capacity(IO_BUFFER, out),
                bytes: 0,
            };
            file.write_all(&encoded)?;
            let sealer = key.sealer(&encoded, file);
            let mut body = BodyWriter::new(zstd::Encoder::new(sealer, ZSTD_LEVEL)?);
            let listed = snapshot.info.tables.clone();
            let mut expected = listed.iter();
            let mut current: Option<(&'static str, u64)> = None;
            let mut counted = 0u64;
            let mismatch = |table: &str, counted: u64, listed: u64| {
                BackupError::Store(StoreError::Backup(format!(
                    "the snapshot counted {listed} rows in {table} but yielded {counted}"
                )))
            };
            loop {
                match snapshot.blocking_next()? {
                    SnapshotItem::Table { name, columns } => {
                        if let Some((table, listed)) = current {
                            if counted != listed {
                                return Err(mismatch(table, counted, listed));
                            }
                        }
                        current = expected
                            .next()
                            .filter(|(t, _)| *t == name)
                            .copied()
                            .or(Some((name, u64::MAX)));
                        counted = 0;
                        body.table(name, &columns)?;
                    }
                    SnapshotItem::Rows(rows) => {
                        for row in &rows {
                            body.row(row)?;
                        }
                        counted += rows.len() as u64;
                        progress.advance(rows.len() as u64);
                    }
                    SnapshotItem::End => break,
                }
            }
            if let Some((table, listed)) = current {
                if counted != listed {
                    return Err(mismatch(table, counted, listed));
                }
            }
            let head = ChainHead {
                seq: snapshot.info.audit_head_seq,
                hash: hex::encode(&snapshot.info.audit_head_hash),
            };
            let (compressed, manifest) = body.finish(head)?;
            let file = compressed.finish()?.finish()?;
            let bytes = file.bytes;
            let out = file
                .inner
                .into_inner()
                .map_err(|e| BackupError::Io(e.into_error()))?;
            Ok((
                out,
                BackupSummary {
                    header,
                    manifest,
                    bytes,
                },
            ))
        })
        .await
        .map_err(worker)?
    }

    /// Verifies a backup file under this instance's backup key (see [`verify_file`]).
    pub async fn backup_verify(
        &self,
        path: PathBuf,
        progress: Arc<dyn Progress>,
    ) -> Result<VerifiedBackup, BackupError> {
        verify_file(path, self.keys.backup(), progress).await
    }
}

/// A backup file whose header has been read and accepted.
struct Opened {
    header: Header,
    /// The header's exact bytes, which every chunk is bound to.
    raw: Vec<u8>,
    /// Positioned at the first chunk.
    input: BufReader<Tracked<File>>,
}

/// Opens a backup file and reads its header, refusing a file that is not a backup, of another
/// version or suite, or made under another backup key, before any chunk is read.
fn open(
    path: &PathBuf,
    key: &BackupKey,
    progress: Arc<dyn Progress>,
) -> Result<Opened, BackupError> {
    let file = File::open(path).map_err(|e| {
        BackupError::Io(io::Error::new(
            e.kind(),
            format!("cannot open {}: {e}", path.display()),
        ))
    })?;
    let mut input = BufReader::with_capacity(
        IO_BUFFER,
        Tracked {
            inner: file,
            progress,
        },
    );
    let (header, raw) = Header::read(&mut input)?;
    if header.cipher_suite != BackupKey::SUITE.name() {
        return Err(BackupError::UnsupportedSuite(header.cipher_suite));
    }
    if header.compression != COMPRESSION {
        return Err(BackupError::BadHeader(format!(
            "compression {:?}",
            header.compression
        )));
    }
    let expected = key.id().to_string();
    if header.key_id != expected {
        return Err(BackupError::WrongKey {
            found: header.key_id,
            expected,
        });
    }
    Ok(Opened { header, raw, input })
}

fn file_len(path: &PathBuf) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Reads the whole file: authenticates every chunk, decompresses and decodes every row, and
/// checks the manifest's counts, digests and chain head against what was read. Writes nothing.
pub async fn verify_file(
    path: PathBuf,
    key: Arc<BackupKey>,
    progress: Arc<dyn Progress>,
) -> Result<VerifiedBackup, BackupError> {
    tokio::task::spawn_blocking(move || {
        let bytes = file_len(&path);
        progress.phase("verifying", bytes, Unit::Bytes);
        let Opened { header, raw, input } = open(&path, &key, progress)?;
        let mut opener = key.opener(&raw, input);
        let manifest = {
            let mut body = BodyReader::new(zstd::Decoder::new(&mut opener)?);
            loop {
                if let BodyItem::End(manifest) = body.next_item()? {
                    break manifest;
                }
            }
        };
        Ok(VerifiedBackup {
            header,
            manifest,
            chunks: opener.chunks(),
            bytes,
        })
    })
    .await
    .map_err(worker)?
}

/// Restores a backup file into `store`: verifies the whole file first, then writes every
/// table in one transaction while checking the file again as it is read, and commits only if
/// the second reading matches the first. An empty target is restored into; one holding data
/// is refused unless `force`, and then kept as a safety copy named with `label` (see
/// [`RestoreMode::Replace`]). The caller audits the restore in the restored database.
pub async fn restore_file(
    store: &dyn Store,
    path: PathBuf,
    key: Arc<BackupKey>,
    force: bool,
    label: &str,
    progress: Arc<dyn Progress>,
) -> Result<RestoreSummary, BackupError> {
    let current = zf_store::MIGRATIONS.last().map_or(0, |m| m.version);
    let header = {
        let (path, key) = (path.clone(), key.clone());
        tokio::task::spawn_blocking(move || open(&path, &key, Arc::new(Quiet)).map(|o| o.header))
            .await
            .map_err(worker)??
    };
    if header.schema_version != current {
        return Err(BackupError::SchemaVersion {
            backup: header.schema_version,
            current,
        });
    }
    let occupied = store.restore_target_occupied().await?;
    let mode = match (occupied.is_empty(), force) {
        (true, _) => RestoreMode::IntoEmpty,
        (false, true) => RestoreMode::Replace {
            label: label.to_owned(),
        },
        (false, false) => return Err(StoreError::TargetNotEmpty(occupied).into()),
    };
    let verified = verify_file(path.clone(), key.clone(), progress.clone()).await?;

    let (sender, feed) = restore_feed();
    let expected = verified.manifest.clone();
    let producer = tokio::task::spawn_blocking(move || {
        progress.phase("restoring", expected.rows, Unit::Rows);
        let Opened { raw, input, .. } = open(&path, &key, Arc::new(Quiet))?;
        let mut opener = key.opener(&raw, input);
        let mut body = BodyReader::new(zstd::Decoder::new(&mut opener)?);
        let mut batch: Vec<Vec<Value>> = Vec::with_capacity(FEED_ROWS);
        let mut batch_bytes = 0usize;
        let send = |item: FeedItem| {
            sender
                .blocking_send(item)
                .map_err(|_| BackupError::Worker("the store stopped reading".into()))
        };
        loop {
            match body.next_item()? {
                BodyItem::Table { name, columns } => {
                    if !batch.is_empty() {
                        send(FeedItem::Rows(std::mem::take(&mut batch)))?;
                        batch_bytes = 0;
                    }
                    send(FeedItem::Table { name, columns })?;
                }
                BodyItem::Row(row) => {
                    batch_bytes += row.iter().map(Value::weight).sum::<usize>();
                    batch.push(row);
                    if batch.len() >= FEED_ROWS || batch_bytes >= FEED_BYTES {
                        progress.advance(batch.len() as u64);
                        send(FeedItem::Rows(std::mem::take(&mut batch)))?;
                        batch_bytes = 0;
                    }
                }
                BodyItem::End(manifest) => {
                    if manifest != expected {
                        return Err(BackupError::Changed(
                            "its manifest differs from the one verified".into(),
                        ));
                    }
                    if !batch.is_empty() {
                        progress.advance(batch.len() as u64);
                        send(FeedItem::Rows(std::mem::take(&mut batch)))?;
                    }
                    return send(FeedItem::Commit);
                }
            }
        }
    });
    let stored = store.restore(mode, feed).await;
    let produced = producer.await.map_err(worker)?;
    match (produced, stored) {
        (Ok(()), Ok(outcome)) => Ok(RestoreSummary {
            backup: verified,
            outcome,
        }),
        // The file's own problem explains the rollback better than the store's "aborted".
        (Err(e), Err(StoreError::RestoreAborted)) => Err(e),
        (_, Err(e)) => Err(e.into()),
        (Err(e), Ok(_)) => Err(e),
    }
}
