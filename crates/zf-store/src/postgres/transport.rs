//! How the connection to PostgreSQL is protected. A server on this machine (loopback or a Unix
//! socket) may be reached in the clear; one across the network only over TLS with its
//! certificate verified — the audit log, user names and sessions travel in that connection, and
//! the encryption boundary holds in transit only if nobody in between can read or pose as the
//! database. The URL takes libpq's words:
//!
//! - `sslmode=verify-full` (or `require`): TLS, the server's certificate checked against
//!   `sslrootcert=/path/ca.pem` — or the public web roots when no `sslrootcert` is given — and
//!   its name against the host. Unlike libpq, `require` never means "encrypted but unverified".
//! - `sslmode=disable`: in the clear, said knowingly (the posture check fails it for a remote
//!   server).
//! - no `sslmode` (or `prefer`): in the clear on this machine, refused across the network.
//! - `verify-ca` is refused: the host name is always checked.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_postgres::config::Host;

use crate::{Result, StoreError};

/// What a PostgreSQL URL asks of the connection, after Zhangfang's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// In the clear: the server is on this machine, or `sslmode=disable` said so.
    Plain { local: bool },
    /// TLS with the server's certificate verified, against `root` or the public web roots.
    Verified { root: Option<PathBuf> },
}

/// The URL tokio-postgres is given (Zhangfang's own parameters taken out) and the transport.
#[derive(Debug)]
pub struct Connection {
    pub config: tokio_postgres::Config,
    pub transport: Transport,
    /// Every server the URL names is on this machine.
    pub local: bool,
}

fn config_error(message: impl Into<String>) -> StoreError {
    StoreError::Config(message.into())
}

/// Decodes `%XX` escapes of a URL parameter's value.
fn percent_decode(value: &str) -> Result<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| config_error("invalid PostgreSQL URL: a bad %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| config_error("invalid PostgreSQL URL: not UTF-8"))
}

fn is_local(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            name.eq_ignore_ascii_case("localhost")
                || IpAddr::from_str(name).is_ok_and(|ip| ip.is_loopback())
        }
    }
}

/// Reads a `postgres://` URL: its TLS parameters under the policy above, the rest for
/// tokio-postgres.
pub fn parse(url: &str) -> Result<Connection> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = None;
    let mut root = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => mode = Some(percent_decode(value)?),
            "sslrootcert" => root = Some(PathBuf::from(percent_decode(value)?)),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config = tokio_postgres::Config::from_str(&url)
        .map_err(|e| config_error(format!("invalid PostgreSQL URL: {e}")))?;
    let local = !config.get_hosts().is_empty()
        && config.get_hosts().iter().all(is_local)
        && config.get_hostaddrs().iter().all(IpAddr::is_loopback);
    let has_root = root.is_some();
    let transport = match mode.as_deref() {
        Some("verify-full" | "require") => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            Transport::Verified { root }
        }
        Some("verify-ca") => {
            return Err(config_error(
                "sslmode=verify-ca is not supported: Zhangfang always checks the server's name; use sslmode=verify-full",
            ))
        }
        Some("disable") => Transport::Plain { local },
        None | Some("prefer") if local => Transport::Plain { local },
        None | Some("prefer") => {
            return Err(config_error(
                "the PostgreSQL server is reached across the network without TLS: add \
                 sslmode=verify-full&sslrootcert=/path/to/ca.pem to the URL (or sslmode=disable \
                 to accept an unencrypted connection knowingly)",
            ))
        }
        Some(other) => {
            return Err(config_error(format!(
                "sslmode must be verify-full, require, prefer or disable, not {other:?}"
            )))
        }
    };
    if has_root && !matches!(transport, Transport::Verified { .. }) {
        return Err(config_error(
            "sslrootcert applies only with sslmode=verify-full (or require)",
        ));
    }
    if matches!(transport, Transport::Plain { .. }) {
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
    }
    Ok(Connection {
        config,
        transport,
        local,
    })
}

/// The rustls client configuration for a verified connection.
pub fn client_config(root: Option<&PathBuf>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match root {
        Some(path) => {
            let bad = |e: String| config_error(format!("sslrootcert {}: {e}", path.display()));
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no certificate in the file".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| config_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(url: &str) -> std::result::Result<Transport, String> {
        parse(url).map(|c| c.transport).map_err(|e| e.to_string())
    }

    #[test]
    fn a_server_on_this_machine_may_be_reached_in_the_clear() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/test",
            "postgres://postgres@localhost/test?options=-csearch_path%3Dzf",
            "postgres://postgres@[::1]:5432/test",
            "postgres://postgres@127.0.0.1/test?sslmode=prefer",
        ] {
            assert_eq!(
                transport(url),
                Ok(Transport::Plain { local: true }),
                "{url}"
            );
        }
    }

    #[test]
    fn a_remote_server_needs_tls_or_an_explicit_disable() {
        let refused = transport("postgres://zf@db.example.cn/zf").unwrap_err();
        assert!(refused.contains("sslmode=verify-full"), "{refused}");
        assert!(transport("postgres://zf@10.0.0.5/zf?sslmode=prefer").is_err());
        assert_eq!(
            transport("postgres://zf@10.0.0.5/zf?sslmode=disable"),
            Ok(Transport::Plain { local: false })
        );
        assert_eq!(
            transport("postgres://zf@db.example.cn/zf?sslmode=verify-full&sslrootcert=%2Fetc%2Fzf%2Fca.pem"),
            Ok(Transport::Verified {
                root: Some(PathBuf::from("/etc/zf/ca.pem"))
            })
        );
        assert_eq!(
            transport("postgres://zf@db.example.cn/zf?sslmode=require"),
            Ok(Transport::Verified { root: None })
        );
    }

    #[test]
    fn unsupported_or_contradictory_parameters_are_refused() {
        assert!(transport("postgres://zf@db/zf?sslmode=verify-ca")
            .unwrap_err()
            .contains("verify-full"));
        assert!(transport("postgres://zf@db/zf?sslmode=sometimes").is_err());
        assert!(transport("postgres://zf@127.0.0.1/zf?sslrootcert=/ca.pem").is_err());
        assert!(transport("postgres://zf@db/zf?sslmode=verify-full&sslrootcert=%zz").is_err());
    }

    #[test]
    fn the_other_parameters_reach_the_driver() {
        let c = parse(
            "postgres://zf@db.example.cn:6432/firm?sslmode=verify-full&options=-csearch_path%3Dzf&sslrootcert=/ca.pem",
        )
        .unwrap();
        assert_eq!(c.config.get_ports(), [6432]);
        assert_eq!(c.config.get_dbname(), Some("firm"));
        assert_eq!(c.config.get_options(), Some("-csearch_path=zf"));
        assert_eq!(
            c.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
    }

    #[test]
    fn a_root_file_without_a_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        assert!(client_config(Some(&path)).is_err());
        assert!(client_config(Some(&dir.path().join("missing.pem"))).is_err());
        assert!(client_config(None).is_ok());
    }
}
