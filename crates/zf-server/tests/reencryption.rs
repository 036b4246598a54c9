//! Data keys by version, on both stores: a re-encryption gives every client and lead a new data
//! key and seals every value again under it while the server keeps serving (requests made
//! meanwhile all succeed and their writes survive); the old keys are then gone from the
//! database; keys that have sealed their share of values are replaced on their own; counters
//! are kept by the database; and a deployment initialised with SM4 seals everything with SM4.

mod common;

use std::time::Duration;

use common::{client_body, id_number, raw_bytes, raw_pairs, raw_text, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_crypto::{CipherSuite, KeyVersion, Sealed, WrappedKey};
use zf_policy::Role;

on_both_stores!(
    a_reencryption_gives_every_holder_a_new_key_while_requests_go_on,
    worn_data_keys_are_replaced_and_counted_by_the_database,
    an_sm4_deployment_seals_wraps_and_indexes_with_the_national_suite
);

/// Every sealed value under a client's or a lead's data key.
const SEALED_VALUES: [&str; 5] = [
    "SELECT legal_rep_id_number FROM clients",
    "SELECT notes FROM clients",
    "SELECT sealed FROM client_records",
    "SELECT content FROM record_blobs",
    "SELECT sealed FROM leads",
];

async fn sealed_values(s: &TestServer) -> Vec<Sealed> {
    let mut out = Vec::new();
    for query in SEALED_VALUES {
        for bytes in raw_bytes(s, query).await {
            out.push(Sealed::from_bytes(bytes).unwrap());
        }
    }
    out
}

fn data_keys_config() -> zf_app::AppConfig {
    zf_app::AppConfig {
        data_keys: zf_app::data_keys::DataKeyPolicy {
            batch: 3,
            grace_ms: 300,
            ..zf_app::data_keys::DataKeyPolicy::default()
        },
        ..zf_app::AppConfig::default()
    }
}

async fn wait_for_the_job(security: &common::Session) -> Value {
    for _ in 0..600 {
        let job: Value = security.get("/api/v1/keys/job").await.json().await.unwrap();
        if job["state"] == "finished" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the re-encryption did not finish in a minute");
}

async fn a_reencryption_gives_every_holder_a_new_key_while_requests_go_on(b: Backend) {
    let Some(s) = TestServer::start_with(b, data_keys_config()).await else {
        return;
    };
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    let mut clients = Vec::new();
    for n in 0..8u32 {
        let mut body = client_body(900 + n, &id_number(900 + n));
        body["notes"] = json!(format!("第{n}号客户的备注"));
        let c = boss.create_client(&body).await;
        let id = c["id"].as_str().unwrap().to_owned();
        let r = boss
            .post(
                &format!("/api/v1/clients/{id}/contacts"),
                &json!({"name": "王五", "mobile": format!("1381234{:04}", n)}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = boss
            .post_bytes(
                &format!("/api/v1/clients/{id}/documents?kind=other&name=a{n}.pdf"),
                format!("%PDF-1.4\n第{n}号\n%%EOF\n").into_bytes(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let doc: Value = r.json().await.unwrap();
        clients.push((id, n, doc["id"].as_str().unwrap().to_owned()));
    }
    let r = boss
        .post(
            "/api/v1/leads",
            &json!({"company_name": "潜在客户有限公司", "mobile": "13900001111"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let lead: Value = r.json().await.unwrap();
    let lead_id = lead["id"].as_str().unwrap().to_owned();

    // 8 clients × (ID number, notes, contact, document) and the lead.
    let before = sealed_values(&s).await;
    assert!(before.len() >= 33, "{}", before.len());
    assert!(before.iter().all(|v| v.key_version() == KeyVersion(1)));
    let old_keys = raw_bytes(&s, "SELECT wrapped_dek FROM client_keys").await;

    // Only the security administrator re-encrypts; a second start while one runs is refused.
    assert_eq!(
        boss.post("/api/v1/keys/reencrypt", &json!({}))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let r = security.post("/api/v1/keys/reencrypt", &json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let started: Value = r.json().await.unwrap();
    assert_eq!(started["total"], 9, "{started}");
    let again = security.post("/api/v1/keys/reencrypt", &json!({})).await;
    assert!(
        again.status() == StatusCode::CONFLICT || again.status() == StatusCode::ACCEPTED,
        "{}",
        again.status()
    );

    // The server keeps serving, reads and writes, while the job runs.
    let mut written = std::collections::HashMap::new();
    for round in 0..6u32 {
        for (id, n, _) in &clients {
            let r = boss.get(&format!("/api/v1/clients/{id}")).await;
            assert_eq!(r.status(), StatusCode::OK);
            let notes = format!("第{n}号客户，第{round}次修改");
            let r = boss
                .patch(&format!("/api/v1/clients/{id}"), &json!({"notes": notes}))
                .await;
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
            written.insert(id.clone(), notes);
        }
    }
    let job = wait_for_the_job(&security).await;
    assert_eq!(job["holders_done"], 9, "{job}");
    assert!(job["values_done"].as_i64().unwrap() >= 25, "{job}");

    // Every value is under version 2 now, and no previous key is left in the database.
    let after = sealed_values(&s).await;
    assert_eq!(after.len(), before.len());
    assert!(
        after.iter().all(|v| v.key_version() == KeyVersion(2)),
        "{:?}",
        after.iter().map(Sealed::key_version).collect::<Vec<_>>()
    );
    assert!(raw_bytes(&s, "SELECT previous_dek FROM client_keys")
        .await
        .is_empty());
    assert!(raw_bytes(&s, "SELECT previous_dek FROM leads")
        .await
        .is_empty());
    let new_keys = raw_bytes(&s, "SELECT wrapped_dek FROM client_keys").await;
    assert!(new_keys.iter().all(|k| !old_keys.contains(k)));
    assert!(
        raw_pairs::<i64, i64>(&s, "SELECT dek_version, encryptions FROM client_keys")
            .await
            .iter()
            .all(|(v, _)| *v == 2)
    );

    // Everything reads back, including what was written while the job ran.
    for (id, n, doc) in &clients {
        let c: Value = boss
            .get(&format!("/api/v1/clients/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(c["legal_rep_id_number"]["value"], id_number(900 + n), "{c}");
        assert_eq!(c["notes"], written[id].as_str(), "{c}");
        let contacts: Value = boss
            .get(&format!("/api/v1/clients/{id}/contacts"))
            .await
            .json()
            .await
            .unwrap();
        assert!(
            contacts.to_string().contains(&format!("1381234{:04}", n)),
            "{contacts}"
        );
        let r = boss
            .get(&format!("/api/v1/clients/{id}/documents/{doc}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.bytes().await.unwrap().as_ref(),
            format!("%PDF-1.4\n第{n}号\n%%EOF\n").as_bytes()
        );
    }
    let lead: Value = boss.get("/api/v1/leads").await.json().await.unwrap();
    assert!(lead.to_string().contains(&lead_id), "{lead}");
    assert!(lead.to_string().contains("13900001111"), "{lead}");
    // Exact search by ID number still finds the client: blind indexes do not depend on DEKs.
    let found = boss
        .post(
            "/api/v1/clients/search",
            &json!({"legal_rep_id_number": id_number(903)}),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(found.contains(&clients[3].0), "{found}");

    // The MFA system key was replaced too: the TOTP secrets are under its version 2, the first
    // version is gone, and the security administrator's authenticator still verifies.
    let secrets = raw_bytes(&s, "SELECT totp_secret FROM user_mfa").await;
    assert!(!secrets.is_empty());
    for bytes in secrets {
        assert_eq!(
            Sealed::from_bytes(bytes).unwrap().key_version(),
            KeyVersion(2)
        );
    }
    let names = raw_text(&s, "SELECT name FROM system_keys").await;
    assert!(names.iter().any(|n| n == "mfa-secrets/v2"), "{names:?}");
    assert!(!names.iter().any(|n| n == "mfa-secrets/v1"), "{names:?}");
    assert_eq!(s.step_up(&security).await.status(), StatusCode::OK);

    let events = s.audit().await;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"reencryption_started"));
    assert!(actions.contains(&"reencryption_finished"));
    // Every batch's new keys are audited with the job and the range of holders they went to:
    // each client lies in the range of one of the job's events.
    let job_id = job["id"].as_str().unwrap();
    let ranges: Vec<(String, String)> = events
        .iter()
        .filter(|e| {
            e.action == "data_keys_replaced"
                && e.resource.as_deref() == Some("client")
                && e.detail.as_deref().is_some_and(|d| d.contains(job_id))
        })
        .map(|e| {
            let (first, last) = e.record_id.as_deref().unwrap().split_once("..").unwrap();
            (first.to_owned(), last.to_owned())
        })
        .collect();
    assert!(ranges.len() >= clients.len().div_ceil(3), "{ranges:?}");
    for (id, _, _) in &clients {
        assert!(
            ranges.iter().any(|(first, last)| first <= id && id <= last),
            "{id} in no audited batch: {ranges:?}"
        );
    }
    // A KEK rotation afterwards rewraps the new keys; all of them are found.
    let r = security.post("/api/v1/keys/rotate", &json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let c: Value = boss
        .get(&format!("/api/v1/clients/{}", clients[0].0))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["legal_rep_id_number"]["value"], id_number(900), "{c}");
}

async fn worn_data_keys_are_replaced_and_counted_by_the_database(b: Backend) {
    let mut config = data_keys_config();
    config.data_keys.max_encryptions = 4;
    config.data_keys.grace_ms = 0;
    let Some(s) = TestServer::start_with(b, config).await else {
        return;
    };
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    let quiet = boss.create_client(&client_body(950, &id_number(950))).await;
    let busy = boss.create_client(&client_body(951, &id_number(951))).await;
    let busy_id = busy["id"].as_str().unwrap().to_owned();
    // One value each so far: the ID number.
    assert_eq!(
        raw_pairs::<i64, i64>(&s, "SELECT dek_version, encryptions FROM client_keys").await,
        vec![(1, 1), (1, 1)]
    );
    for n in 0..3 {
        let r = boss
            .post(
                &format!("/api/v1/clients/{busy_id}/contacts"),
                &json!({"name": (["王一", "李二", "张三"][n]), "mobile": format!("1390000{:04}", n)}),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
    }
    let mut by_id = raw_pairs::<i64, i64>(
        &s,
        "SELECT dek_version, encryptions FROM client_keys ORDER BY encryptions",
    )
    .await;
    by_id.sort();
    assert_eq!(
        by_id,
        vec![(1, 1), (1, 4)],
        "counted in the writing transaction"
    );

    let replaced = s.app.data_keys_maintain().await.unwrap();
    assert_eq!(replaced, 1);
    let mut after = raw_pairs::<i64, i64>(
        &s,
        "SELECT dek_version, encryptions FROM client_keys ORDER BY encryptions",
    )
    .await;
    after.sort();
    // The busy client's key is version 2, its four values sealed again under it (counted).
    assert_eq!(after, vec![(1, 1), (2, 4)]);
    let versions: Vec<KeyVersion> = sealed_values(&s)
        .await
        .iter()
        .map(Sealed::key_version)
        .collect();
    assert_eq!(versions.iter().filter(|v| **v == KeyVersion(2)).count(), 4);
    // The grace is zero here, so the maintenance that replaced the key also dropped the old.
    s.app.data_keys_maintain().await.unwrap();
    assert!(raw_bytes(&s, "SELECT previous_dek FROM client_keys")
        .await
        .is_empty());
    let c: Value = boss
        .get(&format!("/api/v1/clients/{busy_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["legal_rep_id_number"]["value"], id_number(951), "{c}");
    assert!(s
        .audit()
        .await
        .iter()
        .any(|e| e.action.as_str() == "data_keys_replaced"));
    let q: Value = boss
        .get(&format!(
            "/api/v1/clients/{}",
            quiet["id"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(q["legal_rep_id_number"]["value"], id_number(950));
}

async fn an_sm4_deployment_seals_wraps_and_indexes_with_the_national_suite(b: Backend) {
    let mut config = zf_app::AppConfig::default();
    config.data_keys.cipher_suite = Some(CipherSuite::Sm4Gcm);
    let Some(s) = TestServer::start_with(b, config).await else {
        return;
    };
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    let c = boss.create_client(&client_body(960, &id_number(960))).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let r = boss
        .post(
            &format!("/api/v1/clients/{id}/contacts"),
            &json!({"name": "王五", "mobile": "13812345678"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let values = sealed_values(&s).await;
    assert!(values.len() >= 2);
    assert!(values.iter().all(|v| v.suite() == CipherSuite::Sm4Gcm));
    for wrapped in raw_bytes(&s, "SELECT wrapped_dek FROM client_keys").await {
        assert_eq!(
            WrappedKey::from_bytes(wrapped).unwrap().suite(),
            CipherSuite::Sm4Gcm
        );
    }
    // The ID-number index is HMAC-SM3: the search finds the client, and the stored token is
    // not the HMAC-SHA256 one.
    let found = boss
        .post(
            "/api/v1/clients/search",
            &json!({"legal_rep_id_number": id_number(960)}),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(found.contains(&id), "{found}");
    let c: Value = boss
        .get(&format!("/api/v1/clients/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["legal_rep_id_number"]["value"], id_number(960));

    // The suite was recorded at initialisation: another one in the configuration is refused.
    let store = s.app.store().clone();
    let mut other = zf_app::AppConfig::default();
    other.data_keys.cipher_suite = Some(CipherSuite::Aes256Gcm);
    let master = zf_crypto::MasterKey::load(&s.data_dir().join("master.key")).unwrap();
    let refused = zf_app::App::new(store, &master, other).await;
    let message = match refused {
        Ok(_) => panic!("a different suite was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains("initialised with sm4-gcm"), "{message}");
}
