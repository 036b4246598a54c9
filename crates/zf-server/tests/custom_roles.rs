//! Custom roles and teams, end to end over the API on both stores: the security administrator
//! composes a role from the client permissions (anything that would join administration with
//! client data is refused and stores nothing), grants it, edits it and moves its holder between
//! teams — each change reaching the holder's open session on its very next request — and the
//! role's masking holds in details, lists, search and exports.

mod common;

use common::{client_body, id_number, Backend, Session, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_policy::Role;

on_both_stores!(
    a_custom_role_reaches_its_team_masked_and_changes_apply_on_the_next_request,
    definitions_that_would_break_separation_of_duties_are_refused_and_store_nothing,
    a_supervisor_with_a_team_reaches_only_that_team
);

async fn put(who: &Session, path: &str, body: &Value) -> reqwest::Response {
    who.put(path, body).await
}

async fn delete_with(who: &Session, path: &str, body: &Value) -> reqwest::Response {
    who.client
        .delete(who.url(path))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn tax_clerk(version: Option<i64>, permissions: &[&str]) -> Value {
    json!({
        "label": "报税专员",
        "base": "accountant",
        "permissions": permissions,
        "scope": "team",
        "visibility": {"legal_rep_id_number": "masked", "contact_mobile": "visible"},
        "version": version,
        "reason": "报税岗只需看本组客户的账和申报",
    })
}

/// A client of `team`, assigned to nobody, and its id.
async fn client_of_team(boss: &Session, n: u32, team: &str) -> String {
    let mut body = client_body(n, &id_number(n));
    body["team"] = json!(team);
    let c = boss.create_client(&body).await;
    c["id"].as_str().unwrap().to_owned()
}

async fn a_custom_role_reaches_its_team_masked_and_changes_apply_on_the_next_request(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    let clerk = s.signed_in("baoshui", Role::Accountant).await;
    let ours = client_of_team(&boss, 701, "一组").await;
    let theirs = client_of_team(&boss, 702, "二组").await;
    for id in [&ours, &theirs] {
        let r = boss
            .post(
                &format!("/api/v1/clients/{id}/financials"),
                &json!({"period": "2026-10", "revenue": 1_000_000, "cost": 600_000,
                        "vat": 30_000, "cit": 0, "iit_withheld": 0}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }

    // The security administrator composes the role and grants it, with a team.
    let r = put(
        &security,
        "/api/v1/roles/tax-clerk",
        &tax_clerk(
            None,
            &[
                "client:read",
                "client:export",
                "financial_record:read",
                "filing_task:read",
            ],
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let role: Value = r.json().await.unwrap();
    assert_eq!(role["version"], 1);
    assert_eq!(role["scope"], "team");
    assert_eq!(
        role["visibility"]["bank_account"], "hidden",
        "unnamed fields are hidden"
    );
    let r = put(
        &security,
        "/api/v1/users/baoshui/role",
        &json!({"role": "tax-clerk", "reason": "调入报税岗"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = put(
        &security,
        "/api/v1/users/baoshui/team",
        &json!({"team": "一组", "reason": "分到一组"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let eff: Value = security
        .get("/api/v1/users/baoshui/permissions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(eff["role"], "tax-clerk");
    assert_eq!(eff["base_role"], "accountant");
    assert_eq!(eff["custom"], true);
    assert_eq!(eff["client_scope"], "team 一组 and assigned");
    assert_eq!(eff["fields"]["legal_rep_id_number"], "masked");

    // The role change ended the old session; the holder signs in again.
    assert_eq!(
        clerk.get("/api/v1/clients").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let clerk = s
        .sign_in(
            "baoshui",
            "A fresh pass phrase for tests",
            clerk.authenticator.clone(),
        )
        .await;
    let who: Value = clerk.get("/api/v1/session").await.json().await.unwrap();
    assert_eq!(who["role"], "tax-clerk");

    // Their team's client, masked; the other team's answers 404 like an id that does not exist.
    let detail: Value = clerk
        .get(&format!("/api/v1/clients/{ours}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["legal_rep_id_number"]["visibility"], "masked");
    let full = id_number(701);
    assert!(!detail.to_string().contains(&full), "{detail}");
    assert_eq!(
        clerk
            .get(&format!("/api/v1/clients/{theirs}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let list = clerk.get("/api/v1/clients").await.text().await.unwrap();
    assert!(list.contains(&ours) && !list.contains(&theirs), "{list}");
    assert!(!list.contains(&full), "list shows the ID number in full");
    let found = clerk
        .post(
            "/api/v1/clients/search",
            &json!({"legal_rep_id_number": full}),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(found.contains(&ours) && !found.contains(&full), "{found}");
    // What the role does not grant is refused: no updates, no contracts, no reveal.
    assert_eq!(
        clerk
            .patch(
                &format!("/api/v1/clients/{ours}"),
                &json!({"name": "改名有限公司"})
            )
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        clerk
            .get(&format!("/api/v1/clients/{ours}/contracts"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let r = clerk
        .post(
            &format!("/api/v1/clients/{ours}/reveal"),
            &json!({"field": "legal_rep_id_number", "reason": "核对身份证号码"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The role may export but not reveal: the file carries the team's client, masked.
    let r = clerk.get("/api/v1/clients/export?format=csv").await;
    assert_eq!(r.status(), StatusCode::OK);
    let csv = String::from_utf8(r.bytes().await.unwrap().to_vec()).unwrap();
    assert!(csv.contains("上海测试贸易有限公司701"), "{csv}");
    assert!(!csv.contains("上海测试贸易有限公司702"), "{csv}");
    assert!(!csv.contains(&full), "{csv}");
    assert!(
        csv.contains(&format!("{}***********{}", &full[..3], &full[14..])) || csv.contains("****"),
        "{csv}"
    );
    let books = format!("/api/v1/clients/{ours}/financials");
    assert_eq!(clerk.get(&books).await.status(), StatusCode::OK);

    // An edit of the role reaches the same open session on its next request.
    let r = put(
        &security,
        "/api/v1/roles/tax-clerk",
        &tax_clerk(Some(1), &["client:read", "filing_task:read"]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(clerk.get(&books).await.status(), StatusCode::FORBIDDEN);
    // An edit made from a stale version is refused rather than overwriting.
    let r = put(
        &security,
        "/api/v1/roles/tax-clerk",
        &tax_clerk(Some(1), &["client:read", "financial_record:read"]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(clerk.get(&books).await.status(), StatusCode::FORBIDDEN);

    // A team change, too: the same session now reaches the other team and not its old one.
    let r = put(
        &security,
        "/api/v1/users/baoshui/team",
        &json!({"team": "二组", "reason": "调到二组"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        clerk.get(&format!("/api/v1/clients/{ours}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        clerk
            .get(&format!("/api/v1/clients/{theirs}"))
            .await
            .status(),
        StatusCode::OK
    );

    // A held role cannot be deleted; once nobody holds it, it can.
    let r = delete_with(
        &security,
        "/api/v1/roles/tax-clerk",
        &json!({"reason": "岗位撤销"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("held by 1"),
        "{body}"
    );
    let r = put(
        &security,
        "/api/v1/users/baoshui/role",
        &json!({"role": "accountant", "reason": "回到会计岗"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = delete_with(
        &security,
        "/api/v1/roles/tax-clerk",
        &json!({"reason": "岗位撤销"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        security.get("/api/v1/roles/tax-clerk").await.status(),
        StatusCode::NOT_FOUND
    );

    // Every permission change is in the audit trail with who, what and why.
    let events = s.audit().await;
    let of = |action: &str| {
        events
            .iter()
            .filter(|e| e.action.as_str() == action)
            .map(|e| e.detail.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let defined = of("role_defined");
    assert_eq!(defined.len(), 2, "{defined:?}");
    assert!(
        defined[0].contains("financial_record:read") && defined[0].contains("报税岗"),
        "{defined:?}"
    );
    assert!(!defined[1].contains("financial_record:read"), "{defined:?}");
    assert_eq!(of("role_deleted"), vec!["岗位撤销".to_owned()]);
    let teams = of("team_changed");
    assert_eq!(
        teams,
        vec![
            "(no team) -> 一组: 分到一组".to_owned(),
            "一组 -> 二组: 调到二组".to_owned()
        ]
    );
    let roles = of("role_changed");
    assert!(
        roles
            .iter()
            .any(|d| d.starts_with("accountant -> tax-clerk")),
        "{roles:?}"
    );
    assert!(
        roles
            .iter()
            .any(|d| d.starts_with("tax-clerk -> accountant")),
        "{roles:?}"
    );
}

async fn definitions_that_would_break_separation_of_duties_are_refused_and_store_nothing(
    b: Backend,
) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    let before = s.audit().await.len();
    let base = |base: &str, permissions: &[&str]| {
        json!({"label": "混合岗", "base": base, "permissions": permissions, "scope": "all",
               "reason": "试图合并岗位"})
    };
    for (body, needle) in [
        (
            base("accountant", &["client:read", "audit_log:read"]),
            "三员分立",
        ),
        (
            base("sales", &["client:read", "role_assignment:update"]),
            "三员分立",
        ),
        (base("security_admin", &["client:read"]), "三员"),
        (base("accountant", &["client:fly"]), "unknown permission"),
        (base("accountant", &[]), "at least one permission"),
    ] {
        let r = put(&security, "/api/v1/roles/mixed", &body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let err: Value = r.json().await.unwrap();
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{err}"
        );
    }
    for name in ["accountant", "Bad Name", "x"] {
        let r = put(
            &security,
            &format!("/api/v1/roles/{}", name.replace(' ', "%20")),
            &base("sales", &["client:read"]),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name}");
    }
    // Granting a role that does not exist is refused too.
    let r = put(
        &security,
        "/api/v1/users/zhuguan/role",
        &json!({"role": "ghost-role", "reason": "test"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Nothing was stored and nothing was audited as a change.
    let catalog: Value = security.get("/api/v1/roles").await.json().await.unwrap();
    assert_eq!(catalog["custom"], json!([]));
    assert_eq!(
        catalog["built_in"].as_array().unwrap().len(),
        Role::ALL.len()
    );
    assert!(catalog["composable_permissions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| !p.as_str().unwrap().starts_with("audit_log")));
    let after = s.audit().await;
    assert!(
        after[before..]
            .iter()
            .all(|e| !matches!(e.action.as_str(), "role_defined" | "role_changed")),
        "a refused change left an event"
    );
    // Only the security administrator edits roles; a supervisor is refused.
    let r = put(
        &boss,
        "/api/v1/roles/helper",
        &base("sales", &["client:read"]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        boss.get("/api/v1/roles").await.status(),
        StatusCode::FORBIDDEN
    );
}

async fn a_supervisor_with_a_team_reaches_only_that_team(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let head = s.signed_in("laoban", Role::Supervisor).await;
    let lead = s.signed_in("zuzhang", Role::Supervisor).await;
    let ours = client_of_team(&head, 711, "一组").await;
    let theirs = client_of_team(&head, 712, "二组").await;
    // Without a team, a supervisor supervises the whole firm.
    assert_eq!(
        lead.get(&format!("/api/v1/clients/{theirs}"))
            .await
            .status(),
        StatusCode::OK
    );
    let r = put(
        &security,
        "/api/v1/users/zuzhang/team",
        &json!({"team": "一组", "reason": "一组组长"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // The same session, next request: the other team's client is gone, ids tell nothing.
    assert_eq!(
        lead.get(&format!("/api/v1/clients/{ours}")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        lead.get(&format!("/api/v1/clients/{theirs}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let list: Value = lead.get("/api/v1/clients").await.json().await.unwrap();
    let text = list.to_string();
    assert!(text.contains(&ours) && !text.contains(&theirs), "{text}");
    // A client of no team but assigned to the supervisor is still theirs.
    let own = head.create_client(&client_body(713, &id_number(713))).await;
    let own = own["id"].as_str().unwrap();
    assert_eq!(
        lead.get(&format!("/api/v1/clients/{own}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = head
        .put(
            &format!("/api/v1/clients/{own}/assignment"),
            &json!({"accountant": "zuzhang"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        lead.get(&format!("/api/v1/clients/{own}")).await.status(),
        StatusCode::OK
    );
    // Taken out of every team, they supervise the firm again.
    let r = put(
        &security,
        "/api/v1/users/zuzhang/team",
        &json!({"team": null, "reason": "升任主管"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        lead.get(&format!("/api/v1/clients/{theirs}"))
            .await
            .status(),
        StatusCode::OK
    );
}

/// The role editor in the web UI: the whole policy on one screen, a role composed with
/// checkboxes, edited, refused with the reason, granted from the users screen, deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_editor_composes_edits_and_deletes_a_role() {
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let _clerk = s.signed_in("baoshui", Role::Accountant).await;
    let page = security.get("/roles").await.text().await.unwrap();
    for built_in in Role::ALL {
        assert!(page.contains(built_in.label_zh()), "{built_in}");
    }
    assert!(page.contains(r#"value="financial_record:read""#), "{page}");
    assert!(
        !page.contains(r#"value="audit_log:read""#),
        "administrators' permissions are not offered"
    );
    let csrf = common::csrf_of(&page);
    let form = |extra: &[(&str, &str)], reason: &str| {
        let mut fields: Vec<(String, String)> = vec![
            ("csrf".into(), csrf.clone()),
            ("name".into(), "tax-clerk".into()),
            ("label".into(), "报税专员".into()),
            ("base".into(), "accountant".into()),
            ("scope".into(), "assigned".into()),
            ("visibility.legal_rep_id_number".into(), "masked".into()),
            ("reason".into(), reason.into()),
        ];
        fields.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        fields
    };
    let post = |path: &str, fields: Vec<(String, String)>| {
        let request = security.client.post(security.url(path)).form(&fields);
        async move { request.send().await.unwrap() }
    };
    let r = post(
        "/roles",
        form(
            &[
                ("permission", "client:read"),
                ("permission", "financial_record:read"),
            ],
            "新岗位",
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = security.get("/roles").await.text().await.unwrap();
    assert!(
        page.contains("tax-clerk") && page.contains("financial_record:read"),
        "{page}"
    );
    // The edit form comes back with the role's choices checked.
    let edit = security.get("/roles/tax-clerk").await.text().await.unwrap();
    assert!(
        edit.contains(r#"value="financial_record:read" checked"#),
        "{edit}"
    );
    assert!(edit.contains(r#"name="version" value="1""#), "{edit}");
    let r = post(
        "/roles",
        form(
            &[
                ("version", "1"),
                ("permission", "client:read"),
                ("permission", "filing_task:read"),
            ],
            "收窄权限",
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let role: Value = security
        .get("/api/v1/roles/tax-clerk")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        role["permissions"],
        json!(["client:read", "filing_task:read"])
    );
    assert_eq!(role["version"], 2);
    // A form that would break separation of duties is refused on the page, with the reason.
    let r = post(
        "/roles",
        form(
            &[("version", "2"), ("permission", "audit_log:read")],
            "试图加审计",
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("三员分立"));
    // Granted from the users screen, where the custom role is offered beside the built-in ones.
    let users = security.get("/users").await.text().await.unwrap();
    assert!(users.contains(r#"<option value="tax-clerk""#), "{users}");
    let r = security
        .client
        .post(security.url("/users/baoshui/role"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("role", "tax-clerk"),
            ("reason", "调岗"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success() || r.status().is_redirection());
    let r = security
        .client
        .post(security.url("/users/baoshui/team"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("team", "一组"),
            ("reason", "分组"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success() || r.status().is_redirection());
    let eff: Value = security
        .get("/api/v1/users/baoshui/permissions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (eff["role"].as_str(), eff["team"].as_str()),
        (Some("tax-clerk"), Some("一组"))
    );
    // Deleting a held role is refused on the page; released, it goes.
    let r = post(
        "/roles/tax-clerk/delete",
        vec![
            ("csrf".into(), csrf.clone()),
            ("reason".into(), "撤岗".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = security
        .put(
            "/api/v1/users/baoshui/role",
            &json!({"role": "accountant", "reason": "回岗"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = post(
        "/roles/tax-clerk/delete",
        vec![
            ("csrf".into(), csrf.clone()),
            ("reason".into(), "撤岗".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = security.get("/roles").await.text().await.unwrap();
    assert!(!page.contains("报税专员"), "{page}");
}
