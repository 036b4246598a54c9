//! A master key derived from a passphrase: argon2id(passphrase, salt), nothing secret on disk.
//!
//! The data directory keeps `master.passphrase` (mode 0600), which holds only what the derivation needs and a key check
//! value, so that a wrong passphrase is refused before anything is opened:
//!
//! ```text
//! zhangfang-passphrase v1
//! kdf argon2id
//! memory-kib 65536
//! passes 3
//! lanes 1
//! salt <32 hex digits>
//! check <32 hex digits>
//! ```
//!
//! The check value is the first 16 bytes of HMAC-SHA256(master key, "zhangfang/passphrase/check/v1"): a PRF output under
//! the key, so it reveals nothing about the key, and it lets an attacker who has the file test a guessed passphrase no
//! faster than argon2id allows, which a copy of the database would allow anyway.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use hmac::Mac;
use rand::RngCore;

use crate::mac;
use crate::master_key::MasterKey;
use crate::secret::KeyBytes;
use crate::util::constant_time_eq;

const FIRST_LINE: &str = "zhangfang-passphrase v1";
const CHECK_LABEL: &[u8] = b"zhangfang/passphrase/check/v1";
const SALT_LEN: usize = 16;
const CHECK_LEN: usize = 16;
/// Far above any file this module writes, so a wrong file at the path is refused unread.
const MAX_FILE_LEN: u64 = 4096;

/// The argon2id cost of deriving the master key. Defaults: 64 MiB, three passes, one lane — above OWASP's floor, and
/// paid once per start of a command, not per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassphraseParams {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl Default for PassphraseParams {
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            passes: 3,
            lanes: 1,
        }
    }
}

/// Why the passphrase file cannot be created or a passphrase does not open it. Never carries the passphrase.
#[derive(thiserror::Error, Debug)]
pub enum PassphraseError {
    #[error("cannot access the passphrase file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the passphrase file {} does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("the passphrase file {} exists already; a deployment's passphrase is set once", path.display())]
    Exists { path: PathBuf },
    #[error(
        "the passphrase file {} has mode {mode:04o}; it must be readable by its owner only (chmod 600)",
        path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("the passphrase file {} is malformed: {problem}", path.display())]
    Malformed {
        path: PathBuf,
        problem: &'static str,
    },
    #[error("the argon2id parameters are not usable: {0}")]
    Params(String),
    #[error("the passphrase is wrong: it does not derive the master key recorded in {}", path.display())]
    Wrong { path: PathBuf },
}

struct Stored {
    params: PassphraseParams,
    salt: [u8; SALT_LEN],
    check: [u8; CHECK_LEN],
}

impl MasterKey {
    /// Derives a new master key from `passphrase` under a fresh random salt and writes `path` (created exclusively,
    /// mode 0600, synced with its directory), for the first start of a passphrase deployment.
    pub fn create_passphrase_file(
        path: &Path,
        passphrase: &[u8],
        params: PassphraseParams,
    ) -> Result<Self, PassphraseError> {
        let mut salt = [0u8; SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let master = derive(passphrase, &salt, params)?;
        let stored = Stored {
            params,
            salt,
            check: check_value(&master),
        };
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(PassphraseError::Exists {
                    path: path.to_owned(),
                })
            }
            Err(source) => return Err(io_error(path, source)),
        };
        let written = file
            .write_all(stored.encode().as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(source) = written {
            let _ = fs::remove_file(path);
            return Err(io_error(path, source));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)
                .and_then(|dir| dir.sync_all())
                .map_err(|source| io_error(path, source))?;
        }
        Ok(master)
    }

    /// Derives the master key from `passphrase` with the salt and parameters in `path`, refusing a passphrase whose
    /// key does not match the recorded check value.
    pub fn from_passphrase_file(path: &Path, passphrase: &[u8]) -> Result<Self, PassphraseError> {
        let stored = read(path)?;
        let master = derive(passphrase, &stored.salt, stored.params)?;
        if !constant_time_eq(&check_value(&master), &stored.check) {
            return Err(PassphraseError::Wrong {
                path: path.to_owned(),
            });
        }
        Ok(master)
    }
}

fn derive(
    passphrase: &[u8],
    salt: &[u8; SALT_LEN],
    params: PassphraseParams,
) -> Result<MasterKey, PassphraseError> {
    let argon = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(params.memory_kib, params.passes, params.lanes, Some(32))
            .map_err(|e| PassphraseError::Params(e.to_string()))?,
    );
    let mut key = KeyBytes::zeroed();
    argon
        .hash_password_into(passphrase, salt, key.as_mut_array())
        .map_err(|e| PassphraseError::Params(e.to_string()))?;
    Ok(MasterKey::from_secret(key))
}

fn check_value(master: &MasterKey) -> [u8; CHECK_LEN] {
    let mut derivation = mac::keyed(master.as_array());
    derivation.update(CHECK_LABEL);
    let mut tag = [0u8; 32];
    mac::finalize_into(derivation, &mut tag);
    let mut check = [0u8; CHECK_LEN];
    check.copy_from_slice(&tag[..CHECK_LEN]);
    check
}

impl Stored {
    fn encode(&self) -> String {
        format!(
            "{FIRST_LINE}\nkdf argon2id\nmemory-kib {}\npasses {}\nlanes {}\nsalt {}\ncheck {}\n",
            self.params.memory_kib,
            self.params.passes,
            self.params.lanes,
            hex::encode(self.salt),
            hex::encode(self.check)
        )
    }

    fn parse(text: &str) -> Result<Self, &'static str> {
        let mut lines = text.lines();
        if lines.next() != Some(FIRST_LINE) {
            return Err("it does not start with \"zhangfang-passphrase v1\"");
        }
        let mut field = |name: &str| -> Result<&str, &'static str> {
            lines
                .next()
                .and_then(|line| line.strip_prefix(name))
                .and_then(|rest| rest.strip_prefix(' '))
                .ok_or("a line is missing or out of order")
        };
        if field("kdf")? != "argon2id" {
            return Err("the kdf is not argon2id");
        }
        let number = |text: &str| {
            text.parse::<u32>()
                .map_err(|_| "a parameter is not a number")
        };
        let params = PassphraseParams {
            memory_kib: number(field("memory-kib")?)?,
            passes: number(field("passes")?)?,
            lanes: number(field("lanes")?)?,
        };
        let mut salt = [0u8; SALT_LEN];
        hex::decode_to_slice(field("salt")?, &mut salt)
            .map_err(|_| "the salt is not 32 hex digits")?;
        let mut check = [0u8; CHECK_LEN];
        hex::decode_to_slice(field("check")?, &mut check)
            .map_err(|_| "the check value is not 32 hex digits")?;
        if lines.next().is_some() {
            return Err("there is more after the check value");
        }
        Ok(Stored {
            params,
            salt,
            check,
        })
    }
}

fn read(path: &Path) -> Result<Stored, PassphraseError> {
    let file = File::open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            PassphraseError::NotFound {
                path: path.to_owned(),
            }
        } else {
            io_error(path, source)
        }
    })?;
    let metadata = file.metadata().map_err(|source| io_error(path, source))?;
    let malformed = |problem| PassphraseError::Malformed {
        path: path.to_owned(),
        problem,
    };
    if !metadata.is_file() {
        return Err(malformed("it is not a regular file"));
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(PassphraseError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    let mut text = String::new();
    file.take(MAX_FILE_LEN)
        .read_to_string(&mut text)
        .map_err(|_| malformed("it is not UTF-8 text"))?;
    Stored::parse(&text).map_err(malformed)
}

fn io_error(path: &Path, source: io::Error) -> PassphraseError {
    PassphraseError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the tests check the file and the refusal, not argon2's cost.
    const FAST: PassphraseParams = PassphraseParams {
        memory_kib: 1024,
        passes: 1,
        lanes: 1,
    };

    #[test]
    fn the_same_passphrase_derives_the_same_key_and_another_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.passphrase");
        let created =
            MasterKey::create_passphrase_file(&path, b"correct horse battery", FAST).unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = MasterKey::from_passphrase_file(&path, b"correct horse battery").unwrap();
        assert_eq!(created.as_array(), again.as_array());
        let wrong = MasterKey::from_passphrase_file(&path, b"correct horse batterY").unwrap_err();
        assert!(matches!(wrong, PassphraseError::Wrong { .. }), "{wrong}");
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("correct horse"));
        assert!(!text.contains(&hex::encode(created.as_array())));
        assert!(matches!(
            MasterKey::create_passphrase_file(&path, b"x", FAST),
            Err(PassphraseError::Exists { .. })
        ));
    }

    #[test]
    fn two_deployments_with_one_passphrase_get_different_keys() {
        let dir = tempfile::tempdir().unwrap();
        let a = MasterKey::create_passphrase_file(&dir.path().join("a"), b"same", FAST).unwrap();
        let b = MasterKey::create_passphrase_file(&dir.path().join("b"), b"same", FAST).unwrap();
        assert_ne!(a.as_array(), b.as_array());
    }

    #[test]
    fn the_key_is_argon2id_of_the_passphrase_and_salt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let key = MasterKey::create_passphrase_file(&path, b"pass", FAST).unwrap();
        let stored = read(&path).unwrap();
        let mut expected = [0u8; 32];
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, Some(32)).unwrap(),
        )
        .hash_password_into(b"pass", &stored.salt, &mut expected)
        .unwrap();
        assert_eq!(key.as_array(), &expected);
    }

    #[test]
    fn damaged_or_exposed_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        MasterKey::create_passphrase_file(&path, b"pass", FAST).unwrap();
        let good = fs::read_to_string(&path).unwrap();
        for bad in [
            good.replace("argon2id", "scrypt"),
            good.replace("passes 1", "passes one"),
            good.replace("\nlanes 1", ""),
            format!("{good}extra\n"),
            String::new(),
        ] {
            fs::write(&path, &bad).unwrap();
            assert!(
                matches!(
                    MasterKey::from_passphrase_file(&path, b"pass"),
                    Err(PassphraseError::Malformed { .. })
                ),
                "{bad}"
            );
        }
        fs::write(&path, &good).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            MasterKey::from_passphrase_file(&path, b"pass"),
            Err(PassphraseError::Permissions { .. })
        ));
        assert!(matches!(
            MasterKey::from_passphrase_file(&dir.path().join("none"), b"pass"),
            Err(PassphraseError::NotFound { .. })
        ));
    }
}
