//! Generated from the route table and the policy: every route that names a client, for every
//! built-in role — and, beside them, a supervisor who leads a team and a custom role with team
//! scope — on a client in the role's scope and on one outside it (or, for roles that reach
//! every client, one that does not exist) → the policy's allow or deny, and 404 outside the
//! scope so that an id tells nothing.

mod common;

use std::collections::HashMap;

use common::{client_body, id_number, Backend, Session, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use zf_policy::{Requirement, Role};
use zf_server::routes::Verb;

const NOWHERE: &str = "00000000-0000-4000-8000-000000000000";

fn method(v: Verb) -> Method {
    match v {
        Verb::Get => Method::GET,
        Verb::Post => Method::POST,
        Verb::Put => Method::PUT,
        Verb::Patch => Method::PATCH,
        Verb::Delete => Method::DELETE,
    }
}

/// A well-formed body for each kind of route, so that an answer is about policy and scope and
/// never about the body.
fn body_for(rest: &str) -> Value {
    let kind = rest.trim_start_matches('/').split('/').next().unwrap_or("");
    match (kind, rest.ends_with("{record_id}")) {
        ("contacts", _) => json!({"name": "王五", "mobile": "13812345678"}),
        ("contracts", _) => json!({"contract_type": "bookkeeping", "fee": 50_000,
            "billing_cycle": "monthly", "starts_on": "2026-01-01", "ends_on": "2026-12-31"}),
        ("financials", _) => json!({"period": "2026-05", "revenue": 1, "cost": 1, "vat": 0,
            "cit": 0, "iit_withheld": 0}),
        ("filings", true) => json!({"status": "in_progress"}),
        ("filings", false) => json!({"year": 2026}),
        ("interactions", _) => json!({"kind": "call", "occurred_on": "2026-03-01",
            "summary": "核对进项发票"}),
        ("custody", true) => json!({"action": "check_in"}),
        ("custody", false) if rest.ends_with("/moves") => json!({"action": "check_in"}),
        ("custody", false) => json!({"kind": "official_seal"}),
        ("payments", _) => json!({"contract": NOWHERE, "amount": 100, "paid_on": "2026-03-01"}),
        ("assignment", _) => json!({"accountant": "u-accountant"}),
        ("reveal", _) => json!({"field": "legal_rep_id_number", "reason": "核对工商变更材料"}),
        ("erasure", _) => json!({"reason": "客户解约，申请删除资料"}),
        ("", _) => json!({"name": "改名贸易有限公司"}),
        _ => json!({}),
    }
}

/// Who a row of the matrix is: a built-in role, or one of the team-scoped subjects beside them.
struct Subject {
    label: String,
    role: Role,
    custom: Option<zf_policy::CustomRole>,
    team: bool,
    /// `None`: the supervisor who creates the clients.
    session: Option<Session>,
}

impl Subject {
    fn may(&self, p: zf_policy::Permission) -> bool {
        self.custom
            .as_ref()
            .map_or_else(|| self.role.may(p), |c| c.may(p))
    }
}

/// Records of each kind on one client, created by the supervisor, by path segment.
async fn records_of(boss: &Session, client: &str) -> HashMap<&'static str, String> {
    let mut ids = HashMap::new();
    for (seg, body) in [
        ("contacts", body_for("/contacts")),
        ("contracts", body_for("/contracts")),
        ("financials", body_for("/financials")),
        ("interactions", body_for("/interactions")),
        ("custody", body_for("/custody")),
    ] {
        let r = boss
            .post(&format!("/api/v1/clients/{client}/{seg}"), &body)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "{seg}");
        let v: Value = r.json().await.unwrap();
        ids.insert(seg, v["id"].as_str().unwrap().to_owned());
    }
    boss.post(
        &format!("/api/v1/clients/{client}/filings/generate"),
        &json!({"year": 2026}),
    )
    .await;
    let filings: Value = boss
        .get(&format!("/api/v1/clients/{client}/filings"))
        .await
        .json()
        .await
        .unwrap();
    ids.insert("filings", filings[0]["id"].as_str().unwrap().to_owned());
    let r = boss
        .post_bytes(
            &format!("/api/v1/clients/{client}/documents?kind=other&name=a.pdf"),
            b"%PDF-1.4\n%%EOF\n".to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    ids.insert("documents", v["id"].as_str().unwrap().to_owned());
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_route_for_every_role_in_and_out_of_scope() {
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let boss = s.signed_in("u-supervisor", Role::Supervisor).await;
    let mut sessions = Vec::new();
    for role in Role::ALL {
        let name = format!("u-{}", role.as_str().replace('_', "-"));
        let session = if role == Role::Supervisor {
            None
        } else {
            Some(s.signed_in(&name, role).await)
        };
        sessions.push(Subject {
            label: role.to_string(),
            role,
            custom: None,
            team: false,
            session,
        });
    }
    // Two team-scoped subjects beside the built-in roles: a supervisor who leads team 一组, and
    // a custom role composed from client permissions with team scope.
    let security = s.signed_in("u-anquan", Role::SecurityAdmin).await;
    let lead = s.signed_in("u-lead", Role::Supervisor).await;
    let clerk = s.signed_in("u-clerk", Role::Accountant).await;
    let spec = json!({"label": "组内报税", "base": "accountant", "scope": "team",
        "permissions": ["client:read", "financial_record:read", "filing_task:read",
            "filing_task:update", "contact:read", "document:read", "interaction:create"],
        "visibility": {"legal_rep_id_number": "masked"}, "reason": "matrix"});
    assert_eq!(
        security
            .put("/api/v1/roles/team-clerk", &spec)
            .await
            .status(),
        StatusCode::OK
    );
    let custom = zf_policy::CustomRole::new(
        zf_policy::RoleName::parse("team-clerk").unwrap(),
        &serde_json::from_value::<zf_policy::CustomRoleSpec>(json!({"label": "组内报税",
            "base": "accountant", "scope": "team", "permissions": spec["permissions"],
            "visibility": {"legal_rep_id_number": "masked"}}))
        .unwrap(),
    )
    .unwrap();
    let grant = json!({"role": "team-clerk", "reason": "matrix"});
    assert_eq!(
        security
            .put("/api/v1/users/u-clerk/role", &grant)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    for user in ["u-lead", "u-clerk"] {
        let r = security
            .put(
                &format!("/api/v1/users/{user}/team"),
                &json!({"team": "一组", "reason": "matrix"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let clerk = s
        .sign_in(
            "u-clerk",
            "A fresh pass phrase for tests",
            clerk.authenticator.clone(),
        )
        .await;
    sessions.push(Subject {
        label: "supervisor of team 一组".into(),
        role: Role::Supervisor,
        custom: None,
        team: true,
        session: Some(lead),
    });
    sessions.push(Subject {
        label: "custom team-clerk of team 一组".into(),
        role: Role::Accountant,
        custom: Some(custom),
        team: true,
        session: Some(clerk),
    });
    let mut cases = 0;
    let mut by_outcome: HashMap<&'static str, usize> = HashMap::new();
    // Deletions last, so that each case still finds what it is about. (The client's own
    // DELETE only asks for its erasure, which a second person must approve.)
    let mut table = zf_server::route_table();
    table.sort_by_key(|r| match (r.verb, r.path) {
        (Verb::Delete, "/api/v1/clients/{id}") => 2,
        (Verb::Delete, _) => 1,
        _ => 0,
    });
    for subject in &sessions {
        let role = &subject.role;
        let who = subject.session.as_ref().unwrap_or(&boss);
        // Fresh clients per role: one the role reaches (assigned to an accountant, of the
        // subject's team, or any client for roles that reach all), one it does not.
        let mut body = client_body(cases as u32 * 2 + 1, &id_number(1));
        if subject.team {
            body["team"] = json!("一组");
        }
        let mine = boss.create_client(&body).await;
        let mine = mine["id"].as_str().unwrap().to_owned();
        let mut body = client_body(cases as u32 * 2 + 2, &id_number(2));
        if subject.team {
            body["team"] = json!("二组");
        }
        let theirs = boss.create_client(&body).await;
        let theirs = theirs["id"].as_str().unwrap().to_owned();
        if *role == Role::Accountant && !subject.team {
            let r = boss
                .put(
                    &format!("/api/v1/clients/{mine}/assignment"),
                    &json!({"accountant": "u-accountant"}),
                )
                .await;
            assert_eq!(r.status(), StatusCode::OK);
        }
        if *role == Role::Auditor {
            let r = boss
                .put(
                    &format!("/api/v1/clients/{mine}/auditors/u-auditor"),
                    &json!({}),
                )
                .await;
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        }
        let reaches_all =
            !subject.team && zf_policy::client_scope_words(*role, None, None) == "all";
        let has_inside =
            reaches_all || subject.team || matches!(role, Role::Accountant | Role::Auditor);
        let mine_records = records_of(&boss, &mine).await;
        let theirs_records = records_of(&boss, &theirs).await;
        for spec in &table {
            let Some(rest) = spec.path.strip_prefix("/api/v1/clients/{id}") else {
                continue;
            };
            let allowed = match spec.operation.requirement() {
                Requirement::Permission(p) => subject.may(p),
                _ => true,
            };
            let seg = rest.trim_start_matches('/').split('/').next().unwrap_or("");
            let cases_here: Vec<(&str, String, Option<&String>)> = {
                let mut v = Vec::new();
                if has_inside {
                    v.push(("inside", mine.clone(), mine_records.get(seg)));
                }
                if reaches_all {
                    v.push(("nonexistent", NOWHERE.to_owned(), None));
                } else {
                    v.push(("outside", theirs.clone(), theirs_records.get(seg)));
                }
                v
            };
            for (place, client, record) in cases_here {
                let path = format!(
                    "/api/v1/clients/{client}{}",
                    rest.replace("{record_id}", record.map_or(NOWHERE, |r| r.as_str()))
                        .replace("{username}", "u-auditor")
                );
                let mut request = who.client.request(method(spec.verb), who.url(&path));
                request = if seg == "documents" && spec.verb == Verb::Post {
                    who.client
                        .post(who.url(&format!("{path}?kind=other&name=b.pdf")))
                        .header("content-type", "application/octet-stream")
                        .body(b"%PDF-1.4\n%%EOF\n".to_vec())
                } else if seg == "payments" {
                    let contracts = if client == mine {
                        &mine_records
                    } else {
                        &theirs_records
                    };
                    let mut body = body_for(rest);
                    body["contract"] = json!(contracts["contracts"]);
                    request.json(&body)
                } else if spec.verb == Verb::Delete && rest.is_empty() {
                    request.json(&body_for("/erasure"))
                } else if seg == "assignment" && subject.team {
                    // Reassigning keeps the client in the subject's team, or the cases after it
                    // would be about a client that left.
                    request.json(&json!({"accountant": "u-accountant", "team": "一组"}))
                } else {
                    request.json(&body_for(rest))
                };
                let status = request.send().await.unwrap().status();
                cases += 1;
                let what = format!(
                    "{} {:?} {} ({place}) → {status}",
                    subject.label, spec.verb, spec.path
                );
                assert!(!status.is_server_error(), "{what}");
                let outcome = if !allowed {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{what}: the policy denies");
                    "denied"
                } else if place == "inside" {
                    assert!(
                        status != StatusCode::NOT_FOUND && status != StatusCode::FORBIDDEN,
                        "{what}: allowed and in scope"
                    );
                    "allowed"
                } else {
                    assert_eq!(status, StatusCode::NOT_FOUND, "{what}: out of scope");
                    "404"
                };
                *by_outcome.entry(outcome).or_default() += 1;
            }
        }
    }
    assert!(cases >= 200, "{cases}");
    println!(
        "{cases} route × role × scope cases: {} allowed, {} denied, {} answered 404",
        by_outcome.get("allowed").unwrap_or(&0),
        by_outcome.get("denied").unwrap_or(&0),
        by_outcome.get("404").unwrap_or(&0)
    );
}
