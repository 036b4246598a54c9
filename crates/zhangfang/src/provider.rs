//! The configured key provider, resolved once per command: the passphrase asked on the
//! terminal (without echo) or read as one line from a standard input that is not a terminal,
//! and the instance opened with the resulting KEK source.

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use zeroize::Zeroizing;
use zf_crypto::KekSource;
use zf_server::{Init, Instance, PassphrasePrompt};

use crate::config::Settings;

/// Asks on the terminal, twice for a new passphrase; reads one line of standard input when it
/// is not a terminal (automation, tests), where a new passphrase is taken as given.
pub struct TerminalPrompt;

impl PassphrasePrompt for TerminalPrompt {
    fn passphrase(&self, new: bool) -> Result<Zeroizing<String>, String> {
        if !std::io::stdin().is_terminal() {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
            if trimmed.is_empty() {
                return Err("standard input held no passphrase".into());
            }
            return Ok(trimmed);
        }
        let ask = |prompt: &str| {
            rpassword::prompt_password(prompt)
                .map(Zeroizing::new)
                .map_err(|e| format!("cannot read the passphrase from the terminal: {e}"))
        };
        if !new {
            return ask("Passphrase: ");
        }
        eprintln!(
            "Choose the passphrase the master key is derived from. It is stored nowhere: \
             without it the data cannot be read."
        );
        let first = ask("New passphrase: ")?;
        let second = ask("Repeat the passphrase: ")?;
        if first.as_str() != second.as_str() {
            return Err("the two passphrases differ; nothing was created".into());
        }
        Ok(first)
    }
}

/// The KEK source of the configured provider, for this instance's data directory.
pub fn kek_source(settings: &Settings, init: Init) -> anyhow::Result<KekSource> {
    zf_server::instance::prepare_data_dir(&settings.data_dir)?;
    settings
        .key_provider
        .resolve(&settings.data_dir, init, &TerminalPrompt)
        .with_context(|| format!("key provider {:?}", settings.key_provider.name()))
}

/// Opens the instance with the configured key provider (keys created on first start).
pub async fn open_instance(settings: &Settings) -> anyhow::Result<Instance> {
    let source = kek_source(settings, Init::Allowed)?;
    open_with(settings, source).await
}

/// Opens the instance with a KEK source already resolved.
pub async fn open_with(settings: &Settings, source: KekSource) -> anyhow::Result<Instance> {
    Ok(Instance::open_with(
        &settings.data_dir,
        settings.database.clone(),
        settings.app.clone(),
        source,
    )
    .await?)
}
