//! KEK rotation over the API on both stores: every key is rewrapped under the new version and
//! every record still decrypts; the old version is retired and no longer needed (the node
//! refuses it); and someone holding only the old KEK can unwrap nothing in the database.

mod common;

use common::{client_body, id_number, raw_pairs, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_crypto::{KeyVersion, MasterKey, WrappedKey};
use zf_policy::Role;

on_both_stores!(
    a_rotation_rewraps_every_key_and_retires_the_old_kek,
    a_backup_taken_before_a_rotation_still_restores
);

/// The retired version unwraps nothing in the live database, yet a backup from before the
/// rotation — its keys under the old version — still passes a restore test, which opens every
/// sealed value of the restored copy.
async fn a_backup_taken_before_a_rotation_still_restores(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let config = zf_app::AppConfig {
        backup: zf_app::backup::BackupConfig {
            directory: Some(dir.path().to_owned()),
            ..zf_app::backup::BackupConfig::default()
        },
        ..zf_app::AppConfig::default()
    };
    let Some(s) = TestServer::start_with(b, config).await else {
        return;
    };
    let admin = s.signed_in("xitong", Role::SystemAdmin).await;
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    boss.create_client(&client_body(820, &id_number(820))).await;
    let backup = admin.backup_by_hand("/api/v1/backups").await;
    assert_eq!(backup["outcome"], "success", "{backup}");
    let r = security.post("/api/v1/keys/rotate", &json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let test = admin.backup_by_hand("/api/v1/backups/restore-tests").await;
    assert_eq!(test["outcome"], "success", "{test}");
}

/// Every wrapped key in the raw database: (table, id, key).
async fn wrapped_keys(s: &TestServer) -> Vec<(String, String, WrappedKey)> {
    let queries = [
        (
            "client_keys",
            "SELECT client_id, wrapped_dek FROM client_keys",
        ),
        ("leads", "SELECT id, wrapped_dek FROM leads"),
        ("system_keys", "SELECT name, wrapped FROM system_keys"),
    ];
    let mut out = Vec::new();
    for (table, query) in queries {
        let rows: Vec<(String, Vec<u8>)> = raw_pairs(s, query).await;
        for (id, bytes) in rows {
            out.push((table.to_owned(), id, WrappedKey::from_bytes(bytes).unwrap()));
        }
    }
    out
}

async fn a_rotation_rewraps_every_key_and_retires_the_old_kek(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    let mut clients = Vec::new();
    for n in 0..3 {
        let c = boss
            .create_client(&client_body(800 + n, &id_number(800 + n)))
            .await;
        let id = c["id"].as_str().unwrap().to_owned();
        let r = boss
            .post(
                &format!("/api/v1/clients/{id}/contacts"),
                &json!({"name": "王五", "mobile": "13812345678"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        clients.push((id, id_number(800 + n)));
    }
    let r = boss
        .post(
            "/api/v1/leads",
            &json!({"company_name": "潜在客户有限公司", "mobile": "13900001111"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let lead: Value = r.json().await.unwrap();

    let status: Value = security.get("/api/v1/keys").await.json().await.unwrap();
    assert_eq!(status["current"], 1);
    assert_eq!(status["versions"][0]["keys"]["client_keys"], 3);
    assert_eq!(status["rotation_overdue"], false);
    let before = wrapped_keys(&s).await;
    assert!(before
        .iter()
        .all(|(_, _, k)| k.kek_version() == KeyVersion(1)));

    // Only the security administrator rotates.
    assert_eq!(
        boss.post("/api/v1/keys/rotate", &json!({})).await.status(),
        StatusCode::FORBIDDEN
    );
    let r = security.post("/api/v1/keys/rotate", &json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let report: Value = r.json().await.unwrap();
    assert_eq!(
        (report["from"].as_u64(), report["to"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(report["rewrapped"].as_u64(), Some(before.len() as u64));
    assert_eq!(report["retired"], json!([1]));

    // Every record still decrypts — while this node now refuses the retired version.
    for (id, number) in &clients {
        let c: Value = boss
            .get(&format!("/api/v1/clients/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(c["legal_rep_id_number"]["value"], number.as_str(), "{c}");
        let contacts = boss
            .get(&format!("/api/v1/clients/{id}/contacts"))
            .await
            .text()
            .await
            .unwrap();
        assert!(contacts.contains("13812345678"), "{contacts}");
    }
    let leads = boss.get("/api/v1/leads").await.text().await.unwrap();
    assert!(leads.contains("13900001111") && leads.contains(lead["id"].as_str().unwrap()));
    // Sign-in still works: the system keys (MFA secrets, the audit chain) were rewrapped too.
    let again = s
        .sign_in(
            "zhuguan",
            "A fresh pass phrase for tests",
            boss.authenticator.clone(),
        )
        .await;
    assert_eq!(again.get("/api/v1/clients").await.status(), StatusCode::OK);
    let fresh = boss.create_client(&client_body(810, &id_number(810))).await;

    let status: Value = security.get("/api/v1/keys").await.json().await.unwrap();
    assert_eq!(status["current"], 2);
    assert_eq!(status["versions"][0]["state"], "retired");
    assert_eq!(status["versions"][0]["keys"], json!({}));
    assert_eq!(status["versions"][1]["keys"]["client_keys"], 4);

    // In the raw database every key is under v2, including the one written after the
    // rotation; the old KEK alone opens none of them, the new one opens each.
    let master = MasterKey::load(&s.data_dir().join("master.key")).unwrap();
    let (old, new) = (master.kek(KeyVersion(1)), master.kek(KeyVersion(2)));
    let after = wrapped_keys(&s).await;
    assert_eq!(after.len(), before.len() + 1);
    assert!(after
        .iter()
        .any(|(_, id, _)| id == fresh["id"].as_str().unwrap()));
    for (table, id, key) in &after {
        assert_eq!(key.kek_version(), KeyVersion(2), "{table} {id}");
        if table == "system_keys" {
            continue;
        }
        let context = match table.as_str() {
            "client_keys" => format!("client:{id}"),
            _ => format!("lead:{id}"),
        };
        assert!(
            old.unwrap_key(key, context.as_bytes()).is_err(),
            "{table} {id}"
        );
        assert!(
            new.unwrap_key(key, context.as_bytes()).is_ok(),
            "{table} {id}"
        );
    }
    for (table, id, key) in &before {
        if table == "client_keys" {
            // The keys as they were before: the same DEK, so the rewrap changed no data.
            let was = old
                .unwrap_key(key, format!("client:{id}").as_bytes())
                .unwrap();
            let (_, _, now) = after.iter().find(|(_, i, _)| i == id).unwrap();
            let is = new
                .unwrap_key(now, format!("client:{id}").as_bytes())
                .unwrap();
            let aad = zf_crypto::Aad::new("probe", id.clone(), "x");
            let sealed = was.seal(KeyVersion(1), b"same key", &aad);
            assert_eq!(is.open(&sealed, &aad).unwrap().as_slice(), b"same key");
        }
    }

    // The trail: the rotation, each batch, the retirement.
    let actions: Vec<String> = s.audit().await.into_iter().map(|e| e.action).collect();
    let count = |a: &str| actions.iter().filter(|x| *x == a).count();
    assert_eq!(count("kek_rotated"), 1);
    assert!(count("keys_rewrapped") >= 3, "{actions:?}");
    assert_eq!(count("kek_retired"), 1);
    // A second rotation moves on to v3 and retires v2.
    let r = security.post("/api/v1/keys/rotate", &json!({})).await;
    let report: Value = r.json().await.unwrap();
    assert_eq!(
        (report["to"].as_u64(), report["retired"].clone()),
        (Some(3), json!([2]))
    );
    let c: Value = boss
        .get(&format!("/api/v1/clients/{}", clients[0].0))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["legal_rep_id_number"]["value"], clients[0].1.as_str());
}
