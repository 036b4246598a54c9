//! Where a deployment's master key — or, with a token, its KEKs — comes from. Every command
//! that needs keys resolves one [`KeyProvider`] into a [`KekSource`] the same way:
//!
//! - `file`: `master.key` in the data directory (mode 0600 enforced), created on first start;
//! - `env`: the key in `ZHANGFANG_MASTER_KEY`, nothing read from or written to disk;
//! - `passphrase`: argon2id of a passphrase asked at start-up, with the salt, the parameters and
//!   a check value in `master.passphrase` (never the passphrase or the key);
//! - `pkcs11`: the KEKs are sensitive, non-extractable objects in a PKCS#11 token; the process
//!   holds no master key at all, and the token's PIN comes from an environment variable.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;
use zf_crypto::{KekSource, MasterKey, PassphraseParams, Pkcs11Token, TokenPin};

use crate::instance::{InstanceError, MASTER_KEY_VARIABLE};

/// The file a passphrase deployment keeps in its data directory.
pub const PASSPHRASE_FILE: &str = "master.passphrase";
/// The master key file of a `file` deployment.
pub const KEY_FILE: &str = "master.key";
/// Where the token's PIN is read from unless configured otherwise.
pub const DEFAULT_PIN_VARIABLE: &str = "ZHANGFANG_PKCS11_PIN";
/// New passphrases shorter than this are refused.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// The configured key provider. `Debug` holds no secret: the PIN is named by its variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyProvider {
    File,
    Environment,
    Passphrase,
    Pkcs11 {
        module: PathBuf,
        token_label: String,
        /// The name of the environment variable holding the user PIN.
        pin_env: String,
    },
}

/// Asks the operator for the passphrase. `new` is true when the deployment is being initialised,
/// so the prompt should ask twice and compare. The answer is zeroized when dropped.
pub trait PassphrasePrompt {
    fn passphrase(&self, new: bool) -> Result<Zeroizing<String>, String>;
}

/// Whether a command may initialise keys that do not exist yet. `serve` and the data commands
/// may; backup verification and restore may not, since a new key opens no existing backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    Allowed,
    Refused,
}

impl KeyProvider {
    /// The provider when none is configured: `ZHANGFANG_MASTER_KEY` if it is set, otherwise the
    /// key file, as before providers could be chosen.
    pub fn default_from_env() -> Self {
        if std::env::var_os(MASTER_KEY_VARIABLE).is_some() {
            KeyProvider::Environment
        } else {
            KeyProvider::File
        }
    }

    /// The name as configured (`[keys] provider = "…"`).
    pub fn name(&self) -> &'static str {
        match self {
            KeyProvider::File => "file",
            KeyProvider::Environment => "env",
            KeyProvider::Passphrase => "passphrase",
            KeyProvider::Pkcs11 { .. } => "pkcs11",
        }
    }

    /// Opens the provider for the data directory `data_dir` (which must exist already).
    pub fn resolve(
        &self,
        data_dir: &Path,
        init: Init,
        prompt: &dyn PassphrasePrompt,
    ) -> Result<KekSource, InstanceError> {
        match self {
            KeyProvider::File => {
                let path = data_dir.join(KEY_FILE);
                let master = match init {
                    Init::Allowed => {
                        let (master, created) = MasterKey::load_or_create(&path)?;
                        if created {
                            tracing::warn!(
                                path = %path.display(),
                                "created a new master key: back it up separately from the database; without it the data cannot be read"
                            );
                        }
                        master
                    }
                    Init::Refused => MasterKey::load(&path)?,
                };
                Ok(KekSource::Master(master))
            }
            KeyProvider::Environment => match std::env::var(MASTER_KEY_VARIABLE) {
                Ok(value) => {
                    let value = Zeroizing::new(value);
                    tracing::info!("master key from {MASTER_KEY_VARIABLE}; no key file is read");
                    Ok(KekSource::Master(MasterKey::from_env_value(
                        MASTER_KEY_VARIABLE,
                        &value,
                    )?))
                }
                Err(_) => Err(InstanceError::MasterKey(
                    zf_crypto::KeyFileError::Environment {
                        variable: MASTER_KEY_VARIABLE,
                    },
                )),
            },
            KeyProvider::Passphrase => {
                let path = data_dir.join(PASSPHRASE_FILE);
                if path.exists() || init == Init::Refused {
                    let passphrase = prompt
                        .passphrase(false)
                        .map_err(InstanceError::PassphraseInput)?;
                    let master = MasterKey::from_passphrase_file(&path, passphrase.as_bytes())?;
                    return Ok(KekSource::Master(master));
                }
                let passphrase = prompt
                    .passphrase(true)
                    .map_err(InstanceError::PassphraseInput)?;
                if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
                    return Err(InstanceError::PassphraseInput(format!(
                        "a new passphrase must be at least {MIN_PASSPHRASE_CHARS} characters long"
                    )));
                }
                let master = MasterKey::create_passphrase_file(
                    &path,
                    passphrase.as_bytes(),
                    PassphraseParams::default(),
                )?;
                tracing::warn!(
                    path = %path.display(),
                    "derived a new master key from the passphrase: the passphrase is not stored anywhere; without it the data cannot be read"
                );
                Ok(KekSource::Master(master))
            }
            KeyProvider::Pkcs11 {
                module,
                token_label,
                pin_env,
            } => {
                let pin = match std::env::var(pin_env) {
                    Ok(pin) if !pin.is_empty() => TokenPin::new(pin),
                    _ => {
                        return Err(InstanceError::TokenPin {
                            variable: pin_env.clone(),
                        })
                    }
                };
                let token = Pkcs11Token::open(module, token_label, &pin)?;
                tracing::info!(
                    module = %module.display(),
                    token = %token_label,
                    "KEKs held in a PKCS#11 token; no master key exists in this process"
                );
                Ok(KekSource::Token(token))
            }
        }
    }
}

/// A prompt for commands that must not ask: refuses, naming the provider that would need it.
pub struct NoPrompt;

impl PassphrasePrompt for NoPrompt {
    fn passphrase(&self, _new: bool) -> Result<Zeroizing<String>, String> {
        Err("the passphrase provider needs a passphrase, and this caller cannot ask for one".into())
    }
}
