//! Which key opens a backup file. Where the KEK is derived from a master key, the backup key is
//! derived from it too and nothing about it is stored. Where the KEK lives in a PKCS#11 token
//! there is no master key: the backup key is random, stored wrapped under the KEK as the system
//! key `backup/v1`, and every backup's header carries that wrapped form, so that a restore — on
//! a fresh machine, with an empty database — needs the token and nothing else.

use std::path::Path;

use zf_crypto::{BackupKey, KekSource, WrappedKey};
use zf_store::KeyTable;

use super::{BackupError, Header};
use crate::keys::BACKUP_KEY;
use crate::{App, AppError};

/// The context the stored backup key is bound to, as every system key's is.
fn context() -> String {
    format!("system:{BACKUP_KEY}")
}

/// Reads a backup file's header only.
pub fn read_header(path: &Path) -> Result<Header, BackupError> {
    let file = std::fs::File::open(path).map_err(|e| {
        BackupError::Io(std::io::Error::new(
            e.kind(),
            format!("cannot open {}: {e}", path.display()),
        ))
    })?;
    let (header, _) = Header::read(&mut std::io::BufReader::new(file))?;
    Ok(header)
}

/// The key that opens the backup whose header is `header`, from this deployment's KEK source:
/// derived from the master key, or unwrapped by the token from the header's wrapped key. A key
/// that does not match the header's fingerprint is refused as another deployment's.
pub fn backup_key_for(header: &Header, source: &KekSource) -> Result<BackupKey, BackupError> {
    let key = match (source.derived_backup_key(), &header.backup_key_wrapped) {
        (Some(derived), _) => derived,
        (None, None) => {
            return Err(BackupError::KeyUnavailable(
                "it was made by a deployment whose backup key is derived from a master key; \
                 restore it with that master key (key file, ZHANGFANG_MASTER_KEY or passphrase)"
                    .into(),
            ))
        }
        (None, Some(text)) => {
            let wrapped = hex::decode(text)
                .ok()
                .and_then(|bytes| WrappedKey::from_bytes(bytes).ok())
                .ok_or_else(|| BackupError::BadHeader("backup_key_wrapped".into()))?;
            let kek = source
                .kek(wrapped.kek_version(), zf_crypto::CipherSuite::Aes256Gcm)
                .map_err(|e| BackupError::KeyUnavailable(e.to_string()))?;
            kek.unwrap_backup_key(&wrapped, context().as_bytes())
                .map_err(|e| match e {
                    zf_crypto::CryptoError::Token(e) => BackupError::KeyUnavailable(e.to_string()),
                    _ => BackupError::KeyUnavailable(
                        "the token's KEK does not open the backup key in its header: it was \
                         made by another deployment"
                            .into(),
                    ),
                })?
        }
    };
    let expected = key.id().to_string();
    if header.key_id != expected {
        return Err(BackupError::WrongKey {
            found: header.key_id.clone(),
            expected,
        });
    }
    Ok(key)
}

impl App {
    /// The stored backup key as it is wrapped now (under the newest KEK a rotation left it
    /// under), for a new backup's header; `None` where the backup key is derived.
    pub(crate) async fn backup_key_wrapped(&self) -> Result<Option<String>, AppError> {
        if self.keys.kek_source().token().is_none() {
            return Ok(None);
        }
        let mut after = None;
        loop {
            let page = self
                .store
                .wrapped_keys_after(KeyTable::SystemKeys, after, 100)
                .await?;
            if let Some((_, wrapped)) = page.iter().find(|(name, _)| name == BACKUP_KEY) {
                return Ok(Some(hex::encode(wrapped.as_bytes())));
            }
            match page.last() {
                Some((name, _)) if page.len() == 100 => after = Some(name.clone()),
                _ => {
                    return Err(AppError::Internal(
                        "the stored backup key is missing from system_keys".into(),
                    ))
                }
            }
        }
    }
}
