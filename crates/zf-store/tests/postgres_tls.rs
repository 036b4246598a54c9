//! The connection to PostgreSQL over TLS, against the real server: with the server's
//! certificate as the root and its name in the URL the store connects, migrates and reports the
//! negotiated protocol; a certificate no root vouches for, or a name the certificate does not
//! carry, is refused before anything is sent.
//!
//! `ZF_TEST_POSTGRES_TLS_URL` names the server with `sslmode=verify-full&sslrootcert=…` (`.ci/run`
//! sets it from the server's own certificate); without it the test is skipped, unless
//! `ZF_REQUIRE_POSTGRES=1`.

use zf_store::{PgStore, Store};

const TLS_URL_VAR: &str = "ZF_TEST_POSTGRES_TLS_URL";

fn tls_url() -> Option<String> {
    match std::env::var(TLS_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ if std::env::var("ZF_REQUIRE_POSTGRES").is_ok_and(|v| v.trim() == "1") => panic!(
            "ZF_REQUIRE_POSTGRES=1 but {TLS_URL_VAR} is not set: set it to \
             postgres://postgres@localhost:5432/test?sslmode=verify-full&sslrootcert=<the server's CA>"
        ),
        _ => {
            eprintln!("skipping PostgreSQL over TLS: {TLS_URL_VAR} not set");
            None
        }
    }
}

/// A fresh schema, made over the plain loopback URL the other tests use.
async fn fresh_schema() -> String {
    let url = std::env::var("ZF_TEST_POSTGRES_URL").expect("ZF_TEST_POSTGRES_URL");
    let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let schema = format!("zf_t_{}", uuid::Uuid::new_v4().simple());
    c.batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    schema
}

#[tokio::test]
async fn a_verified_tls_connection_serves_and_an_unverifiable_one_is_refused() {
    let Some(url) = tls_url() else { return };
    let schema = fresh_schema().await;
    let url = format!("{url}&options=-csearch_path%3D{schema}");

    let store = PgStore::connect(&url).await.expect("connect over TLS");
    let link = store.database_link().await.unwrap().expect("a server");
    assert!(link.verified, "{link:?}");
    let tls = link.tls.expect("TLS negotiated, as the server sees it");
    assert!(tls.starts_with("TLSv1."), "{tls}");
    assert!(link.local);
    assert_eq!(store.user_count().await.unwrap(), 0, "migrated over TLS");

    // The certificate names localhost, not 127.0.0.1.
    let by_address = url.replacen("@localhost", "@127.0.0.1", 1);
    assert_ne!(
        by_address, url,
        "the TLS URL must name the server localhost"
    );
    let refused = PgStore::connect(&by_address).await.err().expect("refused");
    assert!(
        refused
            .to_string()
            .contains("certificate not valid for name"),
        "{refused}"
    );
    // Without the server's root, the public web roots vouch for nothing here.
    let (base, query) = url.split_once('?').unwrap();
    let no_root: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with("sslrootcert="))
        .collect();
    let refused = PgStore::connect(&format!("{base}?{}", no_root.join("&")))
        .await
        .err()
        .expect("refused");
    assert!(
        refused.to_string().contains("invalid peer certificate"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_loopback_connection_in_the_clear_says_so() {
    let Ok(url) = std::env::var("ZF_TEST_POSTGRES_URL") else {
        return;
    };
    let schema = fresh_schema().await;
    let separator = if url.contains('?') { '&' } else { '?' };
    let store = PgStore::connect(&format!("{url}{separator}options=-csearch_path%3D{schema}"))
        .await
        .unwrap();
    let link = store.database_link().await.unwrap().expect("a server");
    assert_eq!(link.tls, None);
    assert!(!link.verified);
    assert!(link.local);
    assert!(
        !link.server.is_empty() && !link.server.contains('@'),
        "{}",
        link.server
    );
}
