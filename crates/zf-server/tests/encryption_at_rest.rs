//! Invariants 1 and 5 from outside: the plaintext of a sensitive field is nowhere in the
//! store, and neither is an authenticator's secret or a recovery code.

mod common;

use common::{client_body, id_number, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::Value;
use zf_policy::Role;

on_both_stores!(the_id_number_never_reaches_the_store_in_the_clear);

/// Every byte the SQLite store has written: the database file, its WAL and shared memory.
fn sqlite_bytes(server: &TestServer) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("zhangfang.db") {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

/// Every row of every table of the test schema, as PostgreSQL renders it to text (bytea as hex).
async fn postgres_text(server: &TestServer) -> String {
    let url = common::postgres_url().unwrap();
    let schema = server.schema.clone().unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let tables = client
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .unwrap();
    assert!(
        tables.len() >= 6,
        "expected the schema's tables, found {}",
        tables.len()
    );
    let mut all = String::new();
    for t in tables {
        let name: String = t.get(0);
        let rows = client
            .query(&format!("SELECT t::text FROM {schema}.{name} t"), &[])
            .await
            .unwrap();
        for r in rows {
            all.push_str(r.get::<_, &str>(0));
            all.push('\n');
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn the_id_number_never_reaches_the_store_in_the_clear(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let acc = s.signed_in("mimi", Role::Accountant).await;
    let secret = id_number(123);
    let body = client_body(77, &secret);
    let created = acc.create_client(&body).await;
    let id = created["id"].as_str().unwrap();
    // Touch it more: a read, a search, an update of another field.
    assert_eq!(
        acc.get(&format!("/api/v1/clients/{id}")).await.status(),
        StatusCode::OK
    );
    acc.post(
        "/api/v1/clients/search",
        &serde_json::json!({"legal_rep_id_number": secret}),
    )
    .await;

    let name = body["name"].as_str().unwrap();
    match b {
        Backend::Sqlite => {
            let bytes = sqlite_bytes(&s);
            // The scan can see what is there: the company name is stored in the clear.
            assert!(
                contains(&bytes, name.as_bytes()),
                "scan must find the plaintext name"
            );
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "ID number found in the clear"
            );
            assert!(
                !contains(&bytes, &secret.as_bytes()[..14]),
                "ID number prefix found"
            );
        }
        Backend::Postgres => {
            let text = postgres_text(&s).await;
            assert!(text.contains(name), "scan must find the plaintext name");
            assert!(!text.contains(&secret), "ID number found in the clear");
            let hex = hex::encode(secret.as_bytes());
            assert!(!text.contains(&hex), "ID number found as hex bytes");
        }
    }
    // The accountant's authenticator (set up when they signed in) is sealed, and the recovery
    // codes are stored only as keyed hashes.
    let a = acc.authenticator.clone().expect("an authenticator");
    let raw = a.secret.expose().to_vec();
    let base32 = a.secret.to_base32().to_string();
    let codes: Vec<String> = a
        .recovery_codes
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.replace('-', ""))
        .collect();
    assert_eq!(codes.len(), 10);
    match b {
        Backend::Sqlite => {
            let bytes = sqlite_bytes(&s);
            assert!(!contains(&bytes, &raw), "TOTP secret in the clear");
            assert!(
                !contains(&bytes, base32.as_bytes()),
                "TOTP secret as base32"
            );
            for c in &codes {
                assert!(
                    !contains(&bytes, c.as_bytes()),
                    "a recovery code in the clear"
                );
            }
        }
        Backend::Postgres => {
            let text = postgres_text(&s).await;
            assert!(
                !text.contains(&hex::encode(&raw)),
                "TOTP secret as hex bytes"
            );
            assert!(!text.contains(&base32), "TOTP secret as base32");
            for c in &codes {
                assert!(!text.contains(c.as_str()), "a recovery code in the clear");
                assert!(
                    !text.contains(&hex::encode(c.as_bytes())),
                    "a recovery code as hex"
                );
            }
        }
    }
    // And a permitted role still reads it back.
    let back: Value = acc
        .get(&format!("/api/v1/clients/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(back["legal_rep_id_number"]["value"], secret.as_str());
}
