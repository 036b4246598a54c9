//! Masked fields stay masked until revealed; revealing is its own permission, needs a stated
//! reason, and is audited with it.

mod common;

use common::{client_body, id_number, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_policy::Role;

on_both_stores!(a_masked_field_is_revealed_only_with_a_reason_and_an_audit_trail);

async fn a_masked_field_is_revealed_only_with_a_reason_and_an_audit_trail(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let sup = s.signed_in("zhuguan", Role::Supervisor).await;
    let sales = s.signed_in("xiaoshou", Role::Sales).await;
    let auditor = s.signed_in("shenjiyuan", Role::Auditor).await;
    let secret = id_number(950);
    let c = sup.create_client(&client_body(950, &secret)).await;
    let id = c["id"].as_str().unwrap();

    // Sales see it masked, in the detail and in the list.
    let detail: Value = sales
        .get(&format!("/api/v1/clients/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["legal_rep_id_number"]["visibility"], "masked");
    let list = sales.get("/api/v1/clients").await.text().await.unwrap();
    assert!(!list.contains(&secret));

    let reveal = |who: &common::Session, body: Value| {
        let url = format!("/api/v1/clients/{id}/reveal");
        let client = who.client.clone();
        let full = who.url(&url);
        async move { client.post(full).json(&body).send().await.unwrap() }
    };
    // No reason, or no such field: refused with the reason why, nothing audited.
    for (body, needle) in [
        (
            json!({"field": "legal_rep_id_number", "reason": " "}),
            "state why",
        ),
        (
            json!({"field": "bank_account", "reason": "checking the contract"}),
            "not a field",
        ),
    ] {
        let r = reveal(&sales, body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let e: Value = r.json().await.unwrap();
        assert!(
            e["error"]["message"].as_str().unwrap().contains(needle),
            "{e}"
        );
    }
    assert!(s.audit().await.iter().all(|e| e.action != "field_revealed"));

    let r = reveal(
        &sales,
        json!({"field": "legal_rep_id_number", "reason": "工商变更登记需要核对法人身份证"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["value"]["visibility"], "visible");
    assert_eq!(body["value"]["value"], secret.as_str());
    let revealed = s
        .audit()
        .await
        .into_iter()
        .find(|e| e.action == "field_revealed")
        .unwrap();
    assert_eq!(revealed.actor_name, "xiaoshou");
    assert_eq!(revealed.record_id.as_deref(), Some(id));
    assert_eq!(revealed.fields, r#"["legal_rep_id_number"]"#);
    assert_eq!(
        revealed.detail.as_deref(),
        Some("工商变更登记需要核对法人身份证")
    );

    // Roles without the permission are refused before anything is read.
    let r = reveal(
        &auditor,
        json!({"field": "legal_rep_id_number", "reason": "audit sample"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The web form does the same, behind the form token.
    let page = sales
        .get(&format!("/clients/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("reveal") && !page.contains(&secret));
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let r = sales
        .client
        .post(sales.url(&format!("/clients/{id}/reveal")))
        .form(&[("csrf", csrf.as_str()), ("reason", "核对合同主体信息")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains(&secret));
    let r = sales
        .client
        .post(sales.url(&format!("/clients/{id}/reveal")))
        .form(&[("csrf", "forged"), ("reason", "核对合同主体信息")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
