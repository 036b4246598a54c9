//! Invariants 1 and 5 from outside: the plaintext of a sensitive field is nowhere in the
//! store, and neither is an authenticator's secret or a recovery code.

mod common;

use common::{client_body, contains, id_number, postgres_text, sqlite_bytes, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_policy::Role;

on_both_stores!(
    the_id_number_never_reaches_the_store_in_the_clear,
    every_sensitive_crm_field_and_document_stays_sealed_at_rest,
);

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

/// Asserts that none of `secrets` is in the store, and that the scan does find `visible`.
async fn assert_sealed(s: &TestServer, b: Backend, visible: &str, secrets: &[String]) {
    match b {
        Backend::Sqlite => {
            let bytes = sqlite_bytes(s);
            assert!(
                contains(&bytes, visible.as_bytes()),
                "scan must find {visible}"
            );
            for secret in secrets {
                assert!(
                    !contains(&bytes, secret.as_bytes()),
                    "{secret} found in the clear"
                );
            }
        }
        Backend::Postgres => {
            let text = postgres_text(s).await;
            assert!(text.contains(visible), "scan must find {visible}");
            for secret in secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{secret} found in the clear"
                );
                let hex = hex::encode(secret.as_bytes());
                assert!(!text.contains(&hex), "{secret} found as hex bytes");
            }
        }
    }
}

async fn every_sensitive_crm_field_and_document_stays_sealed_at_rest(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    let sales = s.signed_in("xiaoshou", Role::Sales).await;
    let mut body = client_body(5, &id_number(5));
    body["notes"] = json!("老板喜欢周五对账-NOTE-7f3a");
    let client = boss.create_client(&body).await;
    let id = client["id"].as_str().unwrap();
    let contact_id = id_number(456);
    let secrets: Vec<String> = vec![
        "NOTE-7f3a".into(),
        "13987654321".into(),
        "caiwu.wang@example.cn".into(),
        "wangwu_wx88".into(),
        contact_id.clone(),
        "6222020200998877665".into(),
        "987654321987".into(),
        "123123123123".into(),
        "CONTRACT-NOTE-9b1c".into(),
        "SUMMARY-4e2d".into(),
        "DOCUMENT-CONTENT-5c6b".into(),
        "PAYMENT-NOTE-2a8f".into(),
        "13711223344".into(),
        "LEAD-NOTE-6d0e".into(),
    ];
    let post = |path: String, v: Value| {
        let boss = &boss;
        async move {
            let r = boss.post(&path, &v).await;
            assert_eq!(
                r.status(),
                StatusCode::CREATED,
                "{path}: {}",
                r.text().await.unwrap()
            );
            r.json::<Value>().await.unwrap()
        }
    };
    post(
        format!("/api/v1/clients/{id}/contacts"),
        json!({"name": "王五", "mobile": "13987654321", "email": "caiwu.wang@example.cn",
               "wechat": "wangwu_wx88", "id_number": contact_id}),
    )
    .await;
    post(
        format!("/api/v1/clients/{id}/financials"),
        json!({"period": "2026-Q1", "revenue": 987_654_321_987i64, "cost": 123_123_123_123i64,
               "vat": 0, "cit": 0, "iit_withheld": 0,
               "bank_accounts": [{"bank": "招商银行", "number": "6222020200998877665"}]}),
    )
    .await;
    let contract = post(
        format!("/api/v1/clients/{id}/contracts"),
        json!({"contract_type": "audit", "fee": 5_000_000, "billing_cycle": "one_off",
               "starts_on": "2026-01-01", "ends_on": "2026-12-31", "notes": "CONTRACT-NOTE-9b1c"}),
    )
    .await;
    post(
        format!("/api/v1/clients/{id}/interactions"),
        json!({"kind": "visit", "occurred_on": "2026-03-02", "summary": "上门取票 SUMMARY-4e2d"}),
    )
    .await;
    post(
        format!("/api/v1/clients/{id}/payments"),
        json!({"contract": contract["id"], "amount": 5_000_000, "paid_on": "2026-03-02",
               "note": "PAYMENT-NOTE-2a8f"}),
    )
    .await;
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(b"....tEXtComment\0DOCUMENT-CONTENT-5c6b....");
    let r = boss
        .post_bytes(
            &format!("/api/v1/clients/{id}/documents?kind=id_copy&name=id.png"),
            png.clone(),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let doc: Value = r.json().await.unwrap();
    let r = sales
        .post(
            "/api/v1/leads",
            &json!({"company_name": "线索公司", "mobile": "13711223344", "notes": "LEAD-NOTE-6d0e"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_sealed(&s, b, body["name"].as_str().unwrap(), &secrets).await;
    // Each value still reads back for a role allowed to see it.
    let r = boss
        .get(&format!(
            "/api/v1/clients/{id}/documents/{}",
            doc["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().to_vec(), png);
    let contacts: Value = boss
        .get(&format!("/api/v1/clients/{id}/contacts"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(contacts[0]["mobile"]["value"], "13987654321");
    let client: Value = boss
        .get(&format!("/api/v1/clients/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(client["notes"], "老板喜欢周五对账-NOTE-7f3a");
}
