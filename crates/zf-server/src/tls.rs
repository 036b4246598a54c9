//! TLS: TLS 1.2 and 1.3 only, forward-secret AEAD suites only (the ring provider's defaults),
//! a self-signed certificate for localhost on first start, or the operator's own.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS certificate {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("cannot read TLS private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("TLS certificate and key do not form a usable configuration: {0}")]
    Config(String),
    #[error("cannot create the self-signed certificate in {path}: {reason}")]
    Generate { path: PathBuf, reason: String },
}

/// Where the certificate chain and its private key are, both PEM.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Returns the self-signed certificate under `dir/tls/`, creating it (key mode 0600) the
/// first time. Valid for localhost, 127.0.0.1 and ::1.
pub fn ensure_self_signed(dir: &Path) -> Result<TlsFiles, TlsError> {
    let tls_dir = dir.join("tls");
    let files = TlsFiles {
        cert: tls_dir.join("cert.pem"),
        key: tls_dir.join("key.pem"),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    let fail = |reason: String| TlsError::Generate {
        path: tls_dir.clone(),
        reason,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&tls_dir)
        .map_err(|e| fail(e.to_string()))?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| fail(e.to_string()))?;
    let mut key = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&files.key)
        .map_err(|e| fail(e.to_string()))?;
    key.write_all(certified.key_pair.serialize_pem().as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    std::fs::write(&files.cert, certified.cert.pem()).map_err(|e| fail(e.to_string()))?;
    Ok(files)
}

/// The certificate chain in `path`, leaf first; an error if it holds none.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: path.to_owned(),
            reason: "no certificate in the file".into(),
        });
    }
    Ok(certs)
}

/// What the posture check judges of the served certificate (the chain's first): whom it names,
/// when it expires, whether it issued itself.
pub fn certificate_facts(path: &Path) -> Result<zf_app::posture::Certificate, TlsError> {
    use x509_cert::der::Decode;
    let chain = read_chain(path)?;
    let bad = |reason: String| TlsError::Certificate {
        path: path.to_owned(),
        reason,
    };
    let leaf =
        x509_cert::Certificate::from_der(chain[0].as_ref()).map_err(|e| bad(e.to_string()))?;
    let tbs = &leaf.tbs_certificate;
    let not_after = tbs.validity.not_after.to_unix_duration().as_millis();
    let subject = tbs.subject.to_string();
    Ok(zf_app::posture::Certificate {
        subject: if subject.is_empty() {
            path.display().to_string()
        } else {
            subject
        },
        not_after_ms: i64::try_from(not_after).map_err(|e| bad(e.to_string()))?,
        self_signed: tbs.issuer == tbs.subject,
    })
}

/// The rustls server configuration for `files`.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = read_chain(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_facts_name_the_subject_the_expiry_and_the_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let own = ensure_self_signed(dir.path()).unwrap();
        let facts = certificate_facts(&own.cert).unwrap();
        assert!(facts.self_signed);
        assert!(facts.not_after_ms > zf_app::now_ms());

        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Firm CA");
        let ca = ca.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec!["crm.example.cn".to_owned()]).unwrap();
        leaf.distinguished_name
            .push(rcgen::DnType::CommonName, "crm.example.cn");
        leaf.not_after = rcgen::date_time_ymd(2031, 3, 4);
        let leaf = leaf.signed_by(&leaf_key, &ca, &ca_key).unwrap();
        let path = dir.path().join("issued.pem");
        std::fs::write(&path, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
        let facts = certificate_facts(&path).unwrap();
        assert!(!facts.self_signed);
        assert_eq!(facts.subject, "CN=crm.example.cn");
        // 2031-03-04T00:00:00Z
        assert_eq!(facts.not_after_ms, 1_930_348_800_000);

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(certificate_facts(&empty).is_err());
    }
}
