//! Where finished backup files are kept: a directory (a local disk, an NFS mount, a USB disk)
//! or an S3-compatible object store (`s3.rs`), behind one interface so the scheduler, the
//! restore test and the drill treat them alike.
//!
//! A target only ever holds files named by [`backup_name`]; listing ignores everything else,
//! so retention can never delete a file the operator put beside the backups.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

const PREFIX: &str = "zhangfang-";
const SUFFIX: &str = ".zfbackup";

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{0}")]
    Io(String),
    #[error("the object store refused {operation} ({status}): {message}")]
    Refused {
        operation: &'static str,
        status: u16,
        message: String,
    },
    #[error("cannot reach the object store during {operation}: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
    #[error("the object store's answer to {operation} is malformed: {message}")]
    Malformed {
        operation: &'static str,
        message: String,
    },
    #[error("the backup target is misconfigured: {0}")]
    Config(String),
    #[error("the target holds no backup named {0}")]
    NotFound(String),
}

fn io_error(what: &str, path: &Path, e: io::Error) -> TargetError {
    TargetError::Io(format!("cannot {what} {}: {e}", path.display()))
}

/// A backup as a target lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBackup {
    pub name: String,
    pub bytes: u64,
    /// When the backup was taken, read from its name.
    pub created_at_ms: i64,
}

#[async_trait]
pub trait BackupTarget: Send + Sync {
    /// Where this is, for the record and the logs; never a credential.
    fn describe(&self) -> String;
    /// Stores the local file `file` as `name`, completely or not at all.
    async fn put(&self, name: &str, file: &Path) -> Result<u64, TargetError>;
    /// Copies the backup `name` to the local file `to` (created with mode 0600).
    async fn get(&self, name: &str, to: &Path) -> Result<u64, TargetError>;
    /// The backups held, oldest first.
    async fn list(&self) -> Result<Vec<StoredBackup>, TargetError>;
    async fn delete(&self, name: &str) -> Result<(), TargetError>;
}

/// The file name of a backup taken at `created_at_ms` (UTC to the second, so names sort by
/// time) with the start of its id, so two backups in one second do not collide.
pub fn backup_name(created_at_ms: i64, backup_id: &str) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(created_at_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let short: String = backup_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    format!(
        "{PREFIX}{:04}{:02}{:02}T{:02}{:02}{:02}Z-{short}{SUFFIX}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The time a [`backup_name`] carries; `None` for any other name.
pub fn parse_backup_name(name: &str) -> Option<i64> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (stamp, short) = rest.split_once('-')?;
    if short.is_empty() || !short.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let b = stamp.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        let part = stamp.get(from..to)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let month = time::Month::try_from(u8::try_from(num(4, 6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(num(0, 4)?).ok()?,
        month,
        u8::try_from(num(6, 8)?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(num(9, 11)?).ok()?,
        u8::try_from(num(11, 13)?).ok()?,
        u8::try_from(num(13, 15)?).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp()
            * 1000,
    )
}

/// Refuses names that could leave the target's directory or prefix.
fn checked(name: &str) -> Result<&str, TargetError> {
    if parse_backup_name(name).is_some() {
        Ok(name)
    } else {
        Err(TargetError::Config(format!(
            "{name:?} is not a backup file name"
        )))
    }
}

/// Creates `path` for writing with mode 0600 whatever the umask, refusing to follow or replace
/// an existing file.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// A directory: a local disk, an NFS mount, a USB disk.
pub struct DirectoryTarget {
    dir: PathBuf,
}

impl DirectoryTarget {
    /// The directory must exist already: creating a missing mount point would quietly put the
    /// "off-machine" copies on the machine's own disk.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, TargetError> {
        let dir = dir.into();
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(DirectoryTarget { dir }),
            Ok(_) => Err(TargetError::Config(format!(
                "{} is not a directory",
                dir.display()
            ))),
            Err(e) => Err(io_error("use the backup directory", &dir, e)),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the backup `name` is, to read it in place.
    pub fn path_of(&self, name: &str) -> Result<PathBuf, TargetError> {
        Ok(self.dir.join(checked(name)?))
    }
}

fn sync_dir(dir: &Path) -> Result<(), TargetError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("sync the directory", dir, e))
}

/// Copies `from` to a new private file `to` and syncs it.
fn copy_private(from: &Path, to: &Path) -> Result<u64, TargetError> {
    let mut input = File::open(from).map_err(|e| io_error("open", from, e))?;
    let mut output = create_private(to).map_err(|e| io_error("create", to, e))?;
    let bytes = io::copy(&mut input, &mut output).map_err(|e| io_error("write", to, e))?;
    output.sync_all().map_err(|e| io_error("sync", to, e))?;
    Ok(bytes)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TargetError> + Send + 'static,
) -> Result<T, TargetError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TargetError::Io(format!("the file worker stopped: {e}")))?
}

#[async_trait]
impl BackupTarget for DirectoryTarget {
    fn describe(&self) -> String {
        format!("dir:{}", self.dir.display())
    }

    async fn put(&self, name: &str, file: &Path) -> Result<u64, TargetError> {
        let dir = self.dir.clone();
        let name = checked(name)?.to_owned();
        let file = file.to_owned();
        blocking(move || {
            // A reader (a restore, a drill, retention) only ever sees a complete file: the copy
            // is written and synced under a hidden name, then renamed in one step.
            let partial = dir.join(format!(
                ".{name}.partial-{}",
                hex::encode(zf_crypto::random_bytes::<4>())
            ));
            let bytes = match copy_private(&file, &partial) {
                Ok(b) => b,
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(e);
                }
            };
            let target = dir.join(&name);
            if let Err(e) = std::fs::rename(&partial, &target) {
                let _ = std::fs::remove_file(&partial);
                return Err(io_error("rename into", &target, e));
            }
            sync_dir(&dir)?;
            Ok(bytes)
        })
        .await
    }

    async fn get(&self, name: &str, to: &Path) -> Result<u64, TargetError> {
        let from = self.path_of(name)?;
        if !from.exists() {
            return Err(TargetError::NotFound(name.to_owned()));
        }
        let to = to.to_owned();
        blocking(move || copy_private(&from, &to)).await
    }

    async fn list(&self) -> Result<Vec<StoredBackup>, TargetError> {
        let dir = self.dir.clone();
        blocking(move || {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(|e| io_error("list", &dir, e))? {
                let entry = entry.map_err(|e| io_error("list", &dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(created_at_ms) = parse_backup_name(&name) else {
                    continue;
                };
                let meta = entry
                    .metadata()
                    .map_err(|e| io_error("read", &entry.path(), e))?;
                if meta.is_file() {
                    out.push(StoredBackup {
                        name,
                        bytes: meta.len(),
                        created_at_ms,
                    });
                }
            }
            out.sort_by(|a, b| (a.created_at_ms, &a.name).cmp(&(b.created_at_ms, &b.name)));
            Ok(out)
        })
        .await
    }

    async fn delete(&self, name: &str) -> Result<(), TargetError> {
        let path = self.path_of(name)?;
        let dir = self.dir.clone();
        blocking(move || {
            std::fs::remove_file(&path).map_err(|e| io_error("delete", &path, e))?;
            sync_dir(&dir)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_time_and_nothing_else_parses() {
        let at = 1_796_524_200_000; // 2026-12-06T02:30:00Z
        let name = backup_name(at + 999, "0193f2c4-aaaa-7bbb-8ccc-123456789abc");
        assert_eq!(name, "zhangfang-20261206T023000Z-0193f2c4.zfbackup");
        assert_eq!(parse_backup_name(&name), Some(at));
        for other in [
            "zhangfang-20261206T023000Z-.zfbackup",
            "zhangfang-20261306T023000Z-abc.zfbackup",
            "zhangfang-20261206T023000Z-a/b.zfbackup",
            "zhangfang-20261206T023000Z-abc.zfbackup.partial",
            ".zhangfang-20261206T023000Z-abc.zfbackup.partial-1234",
            "notes.txt",
            "zhangfang-2026120xT023000Z-abc.zfbackup",
        ] {
            assert_eq!(parse_backup_name(other), None, "{other}");
        }
    }

    #[tokio::test]
    async fn a_directory_keeps_private_complete_files_and_lists_only_backups() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = DirectoryTarget::new(dir.path()).unwrap();
        assert!(DirectoryTarget::new(dir.path().join("absent")).is_err());
        let source = dir.path().join("source");
        std::fs::write(&source, b"backup bytes").unwrap();
        std::fs::write(dir.path().join("README"), b"not a backup").unwrap();
        let name = backup_name(1_796_524_200_000, "abcdef12");
        assert_eq!(target.put(&name, &source).await.unwrap(), 12);
        let mode = std::fs::metadata(dir.path().join(&name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let listed = target.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, name);
        assert_eq!(listed[0].bytes, 12);
        let copy = dir.path().join("copy");
        target.get(&name, &copy).await.unwrap();
        assert_eq!(std::fs::read(&copy).unwrap(), b"backup bytes");
        assert!(target.put("../escape.zfbackup", &source).await.is_err());
        target.delete(&name).await.unwrap();
        assert!(target.list().await.unwrap().is_empty());
        assert!(dir.path().join("README").exists());
    }
}
