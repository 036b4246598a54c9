//! Layered configuration: built-in defaults, then the TOML file, then environment variables,
//! then command-line flags. Unknown keys in the file are refused, so a typo never silently
//! leaves a setting at its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;
use zf_app::AppConfig;
use zf_server::{DatabaseChoice, KeyProvider};

/// Options every subcommand that touches data takes, so an operator can run them beside a
/// running server against the same data.
#[derive(Args, Clone, Debug)]
pub struct CommonArgs {
    /// Data directory: database, master key, TLS certificate.
    #[arg(long, global = true, env = "ZHANGFANG_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Database URL: postgres://user@host/db for a shared PostgreSQL; the embedded SQLite
    /// file in the data directory when absent.
    #[arg(
        long,
        global = true,
        env = "ZHANGFANG_DATABASE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// Configuration file (TOML). Default: <data>/zhangfang.toml if it exists.
    #[arg(long, global = true, env = "ZHANGFANG_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the master key or the KEKs come from: file (master.key in the data directory,
    /// the default), env (ZHANGFANG_MASTER_KEY), passphrase (asked at start-up), or pkcs11
    /// (KEKs inside a PKCS#11 token).
    #[arg(
        long,
        global = true,
        env = "ZHANGFANG_KEY_PROVIDER",
        value_name = "PROVIDER"
    )]
    pub key_provider: Option<String>,
    /// The PKCS#11 module (shared library) of the token, for --key-provider pkcs11.
    #[arg(
        long,
        global = true,
        env = "ZHANGFANG_PKCS11_MODULE",
        value_name = "FILE"
    )]
    pub pkcs11_module: Option<PathBuf>,
    /// The label of the token holding the KEKs, for --key-provider pkcs11.
    #[arg(
        long,
        global = true,
        env = "ZHANGFANG_PKCS11_TOKEN_LABEL",
        value_name = "LABEL"
    )]
    pub pkcs11_token_label: Option<String>,
    /// The name of the environment variable holding the token's user PIN (default
    /// ZHANGFANG_PKCS11_PIN). The PIN itself is never given on the command line.
    #[arg(
        long,
        global = true,
        env = "ZHANGFANG_PKCS11_PIN_ENV",
        value_name = "VARIABLE"
    )]
    pub pkcs11_pin_env: Option<String>,
}

/// `[keys]`: the key provider.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    /// `file` (default), `env`, `passphrase` or `pkcs11`.
    pub provider: Option<String>,
    pub pkcs11_module: Option<PathBuf>,
    pub pkcs11_token_label: Option<String>,
    /// The name of the environment variable holding the token's user PIN.
    pub pkcs11_pin_env: Option<String>,
    /// The rotation policy: days a KEK may serve before the posture check fails (default 365).
    pub max_age_days: Option<u32>,
}

/// The key provider from flags and environment over the file's `[keys]`; unset, the key file
/// (or ZHANGFANG_MASTER_KEY when that is set, as before providers could be chosen).
pub fn key_provider(args: &CommonArgs, file: Option<&KeysFile>) -> anyhow::Result<KeyProvider> {
    let file = file.cloned().unwrap_or_default();
    let provider = args.key_provider.clone().or(file.provider);
    let module = args.pkcs11_module.clone().or(file.pkcs11_module);
    let label = args.pkcs11_token_label.clone().or(file.pkcs11_token_label);
    let pin_env = args.pkcs11_pin_env.clone().or(file.pkcs11_pin_env);
    let provider = match provider.as_deref().map(str::trim) {
        None => KeyProvider::default_from_env(),
        Some("file") => KeyProvider::File,
        Some("env") => KeyProvider::Environment,
        Some("passphrase") => KeyProvider::Passphrase,
        Some("pkcs11") => {
            let (Some(module), Some(token_label)) = (module.clone(), label.clone()) else {
                bail!(
                    "keys.provider = \"pkcs11\" needs keys.pkcs11_module (the token's PKCS#11 \
                     library) and keys.pkcs11_token_label (or --pkcs11-module and \
                     --pkcs11-token-label)"
                );
            };
            let pin_env = pin_env
                .clone()
                .unwrap_or_else(|| zf_server::key_provider::DEFAULT_PIN_VARIABLE.to_owned());
            if pin_env.trim().is_empty() {
                bail!("keys.pkcs11_pin_env must name an environment variable");
            }
            KeyProvider::Pkcs11 {
                module,
                token_label,
                pin_env,
            }
        }
        Some(other) => {
            bail!("keys.provider must be \"file\", \"env\", \"passphrase\" or \"pkcs11\", not {other:?}")
        }
    };
    if !matches!(provider, KeyProvider::Pkcs11 { .. })
        && (module.is_some() || label.is_some() || pin_env.is_some())
    {
        bail!(
            "pkcs11_module, pkcs11_token_label and pkcs11_pin_env apply only to keys.provider = \"pkcs11\" (the provider is {:?})",
            provider.name()
        );
    }
    Ok(provider)
}

/// The file's keys. Every key is optional; the file itself is optional.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data: Option<PathBuf>,
    pub database: Option<String>,
    pub listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub firm_name: Option<String>,
    pub session_idle_minutes: Option<u32>,
    pub session_absolute_hours: Option<u32>,
    /// At most this many signed-in sessions per user; a new sign-in ends the oldest (default:
    /// no limit).
    pub session_max_per_user: Option<u32>,
    /// `text` (default) or `json`.
    pub log_format: Option<String>,
    /// How often the server seals the audit chain with a signed checkpoint (default 300).
    pub audit_checkpoint_seconds: Option<u64>,
    /// Where the server also appends each checkpoint: a location outside the database,
    /// ideally write-once, that `audit verify --checkpoints` reads.
    pub audit_checkpoint_file: Option<PathBuf>,
    /// Days audit events are kept before they may be archived (at least 180, the legal minimum).
    pub audit_retention_days: Option<u32>,
    /// How often the monitoring rules look at new events, in milliseconds (default 1000).
    pub monitor_interval_ms: Option<u64>,
    /// The monitoring rules: `[monitor.failed_logins]`, `[monitor.read_volume]`, …
    pub monitor: Option<zf_app::monitor::MonitorConfig>,
    /// Where events and alerts go besides the database.
    pub siem: Option<SiemConfig>,
    /// `trusted_proxies = [...]` and `[network.allow] accountant = ["10.8.0.0/16"]`.
    pub network: Option<zf_policy::NetworkPolicy>,
    /// `[login] lock_after = 5`, `lock_minutes = 15`, `address_limit = 100`, …
    pub login: Option<zf_app::identity::LoginPolicy>,
    /// `[mfa] required_roles = [...]`, `step_up_minutes = 5`.
    pub mfa: Option<zf_policy::MfaPolicy>,
    /// `[password] profile = "asvs"` (default) or `"dengbao"` (等保).
    pub password: Option<zf_app::identity::PasswordPolicy>,
    /// `[api_tokens] max_days = 90`, `requests_per_minute = 600`.
    pub api_tokens: Option<zf_app::identity::TokenPolicy>,
    /// `[backup] schedule = "02:30"`, `directory = "/mnt/nas/zhangfang"`, `[backup.s3] …`,
    /// `[backup.retention] daily = 7`, ….
    pub backup: Option<zf_app::backup::BackupConfig>,
    /// `[webauthn] rp_id = "crm.example.cn"`, `origin = "https://crm.example.cn"`,
    /// `rp_name = "…"`: where security keys and passkeys are bound.
    pub webauthn: Option<WebauthnFile>,
    /// `[otp] email = "smtp"`, `[otp.smtp] host = …`: one-time codes by e-mail or SMS.
    pub otp: Option<zf_app::identity::OtpConfig>,
    /// `[data_keys] cipher_suite = "sm4-gcm"`, `max_encryptions = …`: the suite a new
    /// deployment seals with and when data keys are replaced.
    pub data_keys: Option<DataKeysFile>,
    /// `[keys] provider = "pkcs11"`, `pkcs11_module = …`, `pkcs11_token_label = …`,
    /// `pkcs11_pin_env = …`: where the master key or the KEKs come from.
    pub keys: Option<KeysFile>,
}

/// The `[data_keys]` section.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct DataKeysFile {
    /// `aes-256-gcm` (default) or `sm4-gcm` (国密: SM4-GCM, HMAC-SM3 blind indexes). Chosen
    /// once, when the deployment is first started; a different value later is refused.
    pub cipher_suite: Option<String>,
    /// A data key that has sealed this many values is replaced (default 2^30).
    pub max_encryptions: Option<i64>,
    /// Seconds a replaced data key is kept for requests already under way (default 30).
    pub grace_seconds: Option<u32>,
    /// Clients or leads per batch of a re-encryption (default 200).
    pub batch: Option<u32>,
    /// Seconds after which a re-encryption whose runner stopped reporting is taken over by
    /// another (default 30).
    pub lease_seconds: Option<u32>,
}

impl DataKeysFile {
    fn policy(&self) -> anyhow::Result<zf_app::data_keys::DataKeyPolicy> {
        let mut policy = zf_app::data_keys::DataKeyPolicy::default();
        if let Some(name) = &self.cipher_suite {
            policy.cipher_suite = Some(
                name.parse()
                    .map_err(|e| anyhow::anyhow!("data_keys.cipher_suite: {e}"))?,
            );
        }
        if let Some(n) = self.max_encryptions {
            if !(1..=1 << 31).contains(&n) {
                bail!("data_keys.max_encryptions must be between 1 and 2^31 (AES-GCM allows a key 2^32 random-nonce messages)");
            }
            policy.max_encryptions = n;
        }
        if let Some(s) = self.grace_seconds {
            policy.grace_ms = i64::from(s) * 1000;
        }
        if let Some(n) = self.batch {
            if !(1..=5000).contains(&n) {
                bail!("data_keys.batch must be between 1 and 5000");
            }
            policy.batch = n;
        }
        if let Some(s) = self.lease_seconds {
            if s == 0 {
                bail!("data_keys.lease_seconds must be at least 1");
            }
            policy.lease_ms = i64::from(s) * 1000;
        }
        Ok(policy)
    }
}

/// The relying party for security keys and passkeys. Unset, it is `localhost` and
/// `https://localhost:<listen port>`: browsers accept no IP address as an RP ID, so a server
/// reached by a name sets that name here.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct WebauthnFile {
    /// The domain keys are bound to; the origin's host or a parent domain of it.
    pub rp_id: Option<String>,
    /// The exact origin (scheme, host and port) users open the web UI at.
    pub origin: Option<String>,
    /// The name an authenticator shows for the key (default "Zhangfang", or the firm's name).
    pub rp_name: Option<String>,
}

/// The `[webauthn]` section resolved against the port the server listens on.
pub fn webauthn_config(
    file: Option<&WebauthnFile>,
    firm_name: Option<&str>,
    port: u16,
) -> anyhow::Result<zf_app::identity::WebauthnConfig> {
    let file = file.cloned().unwrap_or_default();
    let rp_id = file
        .rp_id
        .unwrap_or_else(|| "localhost".into())
        .trim()
        .to_ascii_lowercase();
    let origin = match file.origin {
        Some(o) => o.trim().trim_end_matches('/').to_owned(),
        None if port == 443 => format!("https://{rp_id}"),
        None => format!("https://{rp_id}:{port}"),
    };
    let host = origin
        .strip_prefix("https://")
        .ok_or_else(|| anyhow::anyhow!("webauthn.origin must start with https://"))?;
    let host = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    if host.contains('/') || !(host == rp_id || host.ends_with(&format!(".{rp_id}"))) {
        bail!(
            "webauthn.origin {origin:?} must be https://<host>[:port] with the host equal to \
             webauthn.rp_id {rp_id:?} or under it"
        );
    }
    if rp_id.parse::<std::net::IpAddr>().is_ok() {
        bail!("webauthn.rp_id must be a domain name: browsers refuse an IP address");
    }
    let config = zf_app::identity::WebauthnConfig {
        rp_id,
        origins: vec![origin],
        rp_name: file
            .rp_name
            .or_else(|| firm_name.map(str::to_owned))
            .unwrap_or_else(|| "Zhangfang".into()),
    };
    config
        .relying_party()
        .map_err(|e| anyhow::anyhow!("[webauthn]: {e}"))?;
    Ok(config)
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct SiemConfig {
    /// Every audit event and alert as RFC 5424 syslog over TLS.
    pub syslog: Option<zf_siem::SyslogConfig>,
    /// Alerts to chat robots (企业微信, 钉钉, 飞书) or any JSON endpoint.
    #[serde(default)]
    pub webhooks: Vec<zf_siem::WebhookConfig>,
}

/// The merged result.
#[derive(Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database: DatabaseChoice,
    pub file: FileConfig,
    pub app: AppConfig,
    pub key_provider: KeyProvider,
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    toml::from_str(&text)
        .with_context(|| format!("configuration file {} is not valid", path.display()))
}

impl Settings {
    pub fn load(args: &CommonArgs) -> anyhow::Result<Settings> {
        let default_data = PathBuf::from("zhangfang-data");
        let explicit_file = args.config.is_some();
        let file_path = args.config.clone().unwrap_or_else(|| {
            args.data
                .clone()
                .unwrap_or_else(|| default_data.clone())
                .join("zhangfang.toml")
        });
        let file = if explicit_file || file_path.exists() {
            read_file(&file_path)?
        } else {
            FileConfig::default()
        };
        let data_dir = args
            .data
            .clone()
            .or_else(|| file.data.clone())
            .unwrap_or(default_data);
        let database_url = args.database.clone().or_else(|| file.database.clone());
        let database = DatabaseChoice::parse(&data_dir, database_url.as_deref())?;
        let mut app = AppConfig {
            firm_name: file.firm_name.clone(),
            monitor: file.monitor.clone().unwrap_or_default(),
            network: file.network.clone().unwrap_or_default(),
            login: file
                .login
                .clone()
                .unwrap_or_else(|| file.password.clone().unwrap_or_default().default_login()),
            password: file.password.clone().unwrap_or_default(),
            mfa: file.mfa.clone().unwrap_or_default(),
            max_sessions_per_user: file.session_max_per_user.unwrap_or(0),
            api_tokens: file.api_tokens.clone().unwrap_or_default(),
            otp: file.otp.clone().unwrap_or_default().within(&data_dir),
            backup: file.backup.clone().unwrap_or_default(),
            data_keys: file.data_keys.clone().unwrap_or_default().policy()?,
            webauthn: webauthn_config(
                file.webauthn.as_ref(),
                file.firm_name.as_deref(),
                file.listen.map_or(8443, |l| l.port()),
            )?,
            ..AppConfig::default()
        };
        if !(1..=3650).contains(&app.api_tokens.max_days) || app.api_tokens.requests_per_minute == 0
        {
            bail!("api_tokens.max_days must be 1 to 3650 and requests_per_minute at least 1");
        }
        if !(1..=60).contains(&app.mfa.step_up_minutes) {
            bail!("mfa.step_up_minutes must be between 1 and 60");
        }
        if file.session_max_per_user == Some(0) {
            bail!("session_max_per_user must be at least 1 (leave it out for no limit)");
        }
        if let Some(m) = file.session_idle_minutes {
            if !(1..=24 * 60).contains(&m) {
                bail!("session_idle_minutes must be between 1 and 1440");
            }
            app.session_idle_timeout_ms = i64::from(m) * 60_000;
        }
        if let Some(h) = file.session_absolute_hours {
            if !(1..=72).contains(&h) {
                bail!("session_absolute_hours must be between 1 and 72");
            }
            app.session_absolute_timeout_ms = i64::from(h) * 3_600_000;
        }
        if let Some(days) = file.audit_retention_days {
            if days < 180 {
                bail!("audit_retention_days must be at least 180 (the Cybersecurity Law requires six months)");
            }
            app.audit_retention_days = days;
        }
        if file
            .backup
            .as_ref()
            .is_some_and(|b| b.enabled && !b.has_target())
        {
            bail!("[backup] needs a target: directory = \"…\" or a [backup.s3] section (or enabled = false)");
        }
        if !(-12..=14).contains(&app.backup.utc_offset_hours) {
            bail!("backup.utc_offset_hours must be between -12 and 14");
        }
        if file.monitor_interval_ms == Some(0) {
            bail!("monitor_interval_ms must be at least 1");
        }
        if file.audit_checkpoint_seconds == Some(0) {
            bail!("audit_checkpoint_seconds must be at least 1");
        }
        if let Some(f) = &file.log_format {
            if f != "text" && f != "json" {
                bail!("log_format must be \"text\" or \"json\", not {f:?}");
            }
        }
        if let Some(days) = file.keys.as_ref().and_then(|k| k.max_age_days) {
            if !(1..=3650).contains(&days) {
                bail!("keys.max_age_days must be between 1 and 3650");
            }
            app.kek_max_age_days = days;
        }
        let key_provider = key_provider(args, file.keys.as_ref())?;
        Ok(Settings {
            data_dir,
            database,
            file,
            app,
            key_provider,
        })
    }
}

pub fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ZHANGFANG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if settings.file.log_format.as_deref() == Some("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webauthn_defaults_to_localhost_on_the_listen_port_and_checks_what_is_given() {
        let c = webauthn_config(None, Some("某某财税"), 9443).unwrap();
        assert_eq!(c.rp_id, "localhost");
        assert_eq!(c.origins, vec!["https://localhost:9443".to_owned()]);
        assert_eq!(c.rp_name, "某某财税");
        let named = WebauthnFile {
            rp_id: Some("crm.example.cn".into()),
            ..WebauthnFile::default()
        };
        let c = webauthn_config(Some(&named), None, 443).unwrap();
        assert_eq!(c.origins, vec!["https://crm.example.cn".to_owned()]);
        let parent = WebauthnFile {
            rp_id: Some("example.cn".into()),
            origin: Some("https://crm.example.cn:8443/".into()),
            rp_name: None,
        };
        let c = webauthn_config(Some(&parent), None, 8443).unwrap();
        assert_eq!(c.origins, vec!["https://crm.example.cn:8443".to_owned()]);
        for (rp_id, origin) in [
            ("example.cn", "http://crm.example.cn"),
            ("example.cn", "https://evil.cn"),
            ("127.0.0.1", "https://127.0.0.1:8443"),
            ("example.cn", "https://crm.example.cn/path"),
        ] {
            let f = WebauthnFile {
                rp_id: Some(rp_id.into()),
                origin: Some(origin.into()),
                rp_name: None,
            };
            assert!(
                webauthn_config(Some(&f), None, 8443).is_err(),
                "{rp_id} {origin}"
            );
        }
        assert!(toml::from_str::<FileConfig>("[webauthn]\nrp_idd = \"x\"\n").is_err());
    }
}
