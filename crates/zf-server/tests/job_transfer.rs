//! A job transfer takes effect on the very next request of a session opened before it (the
//! session ends: the new role starts with a new sign-in and a new session id), and the change
//! respects separation of duties and leaves a history.

mod common;

use common::{client_body, csrf_of, id_number, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_policy::Role;

on_both_stores!(
    a_moved_user_loses_access_on_the_next_request,
    a_moved_accountants_clients_move_only_with_a_supervisors_approval
);

async fn a_moved_user_loses_access_on_the_next_request(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let sup = s.signed_in("zhuguan", Role::Supervisor).await;
    let moving = s.signed_in("diaogang", Role::Accountant).await;
    let c = moving
        .create_client(&client_body(901, &id_number(901)))
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    let read: Value = moving
        .get(&format!("/api/v1/clients/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["legal_rep_id_number"]["visibility"], "visible");
    let books = format!("/api/v1/clients/{id}/financials");
    let r = moving
        .post(
            &books,
            &json!({"period": "2026-10", "revenue": 8_800_000, "cost": 5_500_000, "vat": 264_000,
                    "cit": 0, "iit_withheld": 0}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(moving.get(&books).await.status(), StatusCode::OK);

    // The security admin moves the accountant to sales while their session stays open.
    let r = security
        .client
        .put(security.url("/api/v1/users/diaogang/role"))
        .json(&json!({"role": "sales", "reason": "transferred to the sales team on 1 Dec"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // The very next request of the old session is refused: a privilege change ends it.
    assert_eq!(
        moving.get(&format!("/api/v1/clients/{id}")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(moving.get(&books).await.status(), StatusCode::UNAUTHORIZED);
    // Signed in again, the user works under the new role: no full ID number, no more
    // updates. (Sales reach every client, masked.)
    let moving = s
        .sign_in(
            "diaogang",
            "A fresh pass phrase for tests",
            moving.authenticator.clone(),
        )
        .await;
    let read: Value = moving
        .get(&format!("/api/v1/clients/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["legal_rep_id_number"]["visibility"], "masked");
    // Sales never see financial records.
    assert_eq!(moving.get(&books).await.status(), StatusCode::FORBIDDEN);
    let r = moving
        .patch(
            &format!("/api/v1/clients/{id}"),
            &json!({"name": "改名有限公司"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let who: Value = moving.get("/api/v1/session").await.json().await.unwrap();
    assert_eq!(who["role"], "sales");

    // Separation of duties: no administrator role through the API, not one's own role, and
    // nobody but the security admin.
    for (who, target, role, needle) in [
        (
            &security,
            "diaogang",
            "system_admin",
            "second person's approval",
        ),
        (&security, "anquan", "supervisor", "own role"),
        (&security, "diaogang", "sales", "already holds"),
    ] {
        let r = who
            .client
            .put(who.url(&format!("/api/v1/users/{target}/role")))
            .json(&json!({"role": role, "reason": "test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{target} → {role}"
        );
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains(needle),
            "{body}"
        );
    }
    let r = sup
        .client
        .put(sup.url("/api/v1/users/diaogang/role"))
        .json(&json!({"role": "accountant", "reason": "bring back"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = security
        .client
        .put(security.url("/api/v1/users/diaogang/role"))
        .json(&json!({"role": "accountant", "reason": "  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // "Why can they see this?": the effective permissions, as the security admin sees them.
    let eff: Value = security
        .get("/api/v1/users/diaogang/permissions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(eff["role"], "sales");
    assert_eq!(eff["client_scope"], "all");
    assert_eq!(eff["fields"]["legal_rep_id_number"], "masked");
    assert!(eff["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("client:read")));
    assert!(!eff["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("client:update")));
    assert_eq!(
        sup.get("/api/v1/users/diaogang/permissions").await.status(),
        StatusCode::FORBIDDEN
    );

    // The history: who, when, from what to what, and why.
    let changes: Vec<_> = s
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == "role_changed")
        .collect();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].actor_name, "anquan");
    assert_eq!(changes[0].record_id.as_deref(), Some("diaogang"));
    assert_eq!(
        changes[0].detail.as_deref(),
        Some("accountant -> sales: transferred to the sales team on 1 Dec")
    );
}

async fn a_moved_accountants_clients_move_only_with_a_supervisors_approval(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let sup = s.signed_in("zhuguan", Role::Supervisor).await;
    let leaving = s.signed_in("likai", Role::Accountant).await;
    let taking = s.signed_in("jieshou", Role::Accountant).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let c = leaving
            .create_client(&client_body(920 + n, &id_number(920 + n)))
            .await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let r = security
        .put(
            "/api/v1/users/likai/role",
            &json!({"role": "sales", "reason": "调入销售部"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // The change recorded a pending request; the clients stay where they were until a
    // supervisor decides, so the taking accountant does not see them yet.
    let pending: Value = sup
        .get("/api/v1/reassignments?status=pending")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    let request = &pending[0];
    assert_eq!(request["from"], "likai");
    assert_eq!(request["clients"], 3);
    assert_eq!(request["requested_by"], "anquan");
    assert!(request["reason"].as_str().unwrap().contains("调入销售部"));
    let id = request["id"].as_str().unwrap().to_owned();
    for c in &ids {
        assert_eq!(
            taking.get(&format!("/api/v1/clients/{c}")).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    // Nobody but a supervisor decides; bad decisions change nothing.
    let decide = |to: Value, reason: &str| json!({"to": to, "reason": reason});
    for who in [&security, &taking] {
        let r = who
            .post(
                &format!("/api/v1/reassignments/{id}"),
                &decide(json!("jieshou"), "接手"),
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    for (to, needle) in [
        (json!("likai"), "user who was moved"),
        (json!("anquan"), "not an accountant"),
        (json!("nobody"), "no active user"),
    ] {
        let r = sup
            .post(&format!("/api/v1/reassignments/{id}"), &decide(to, "接手"))
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains(needle),
            "{body}"
        );
    }
    // The supervisor approves in the web UI: every client moves, with the approver on record.
    let page = sup.get("/reassignments").await.text().await.unwrap();
    assert!(page.contains("likai"), "{page}");
    let r = sup
        .client
        .post(sup.url(&format!("/reassignments/{id}")))
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("to", "jieshou"),
            ("reason", "李凯调岗，客户由接手会计负责"),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    for c in &ids {
        assert_eq!(
            taking.get(&format!("/api/v1/clients/{c}")).await.status(),
            StatusCode::OK
        );
    }
    let decided: Value = sup.get("/api/v1/reassignments").await.json().await.unwrap();
    assert_eq!(decided[0]["status"], "approved");
    assert_eq!(decided[0]["approved_by"], "zhuguan");
    assert_eq!(decided[0]["to"], "jieshou");
    assert_eq!(decided[0]["moved"], 3);
    // Decided once: a second decision is refused.
    let r = sup
        .post(
            &format!("/api/v1/reassignments/{id}"),
            &decide(json!(null), "再议"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The permission history of the moved user: who, when, why, approved by.
    let history: Value = security
        .get("/api/v1/users/likai/history")
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["user_created", "role_changed", "clients_reassigned"],
        "{history}"
    );
    assert_eq!(history[1]["by"], "anquan");
    assert_eq!(history[2]["approved_by"], "zhuguan");
    assert!(
        history[2]["detail"]
            .as_str()
            .unwrap()
            .contains("to jieshou"),
        "{history}"
    );
    let page = security
        .get("/users/likai/history")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("clients_reassigned") && page.contains("zhuguan"),
        "{page}"
    );
    assert_eq!(
        sup.get("/api/v1/users/likai/history").await.status(),
        StatusCode::FORBIDDEN
    );
}
