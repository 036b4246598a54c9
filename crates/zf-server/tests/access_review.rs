//! An access review campaign end to end: created, answered, a revoked line takes effect at
//! once, overdue lines are flagged and escalated.

mod common;

use common::{csrf_of, sql, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_policy::Role;

on_both_stores!(
    an_access_review_runs_end_to_end,
    a_supervisor_answers_the_lines_of_their_team,
    two_nodes_on_one_database_start_one_scheduled_review,
);

/// Every node runs the schedule; the lease makes one of them start the quarter's review.
async fn two_nodes_on_one_database_start_one_scheduled_review(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    s.signed_in("liuren", Role::Accountant).await;
    let other =
        zf_server::Instance::open(&s.data_dir(), s.database.clone(), s.app.config().clone())
            .await
            .expect("a second node on the same database")
            .app;
    let (a, b) = tokio::join!(s.app.review_schedule(90, 14), other.review_schedule(90, 14));
    let started = [a.unwrap(), b.unwrap()].into_iter().flatten().count();
    assert_eq!(started, 1);
    assert_eq!(s.app.store().review_campaigns().await.unwrap().len(), 1);
    // The lease was given back: the next quarter's review starts on whichever node asks.
    sql(&s, &["UPDATE review_campaigns SET created_at = 0"]).await;
    assert!(other.review_schedule(90, 14).await.unwrap().is_some());
}

async fn an_access_review_runs_end_to_end(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let keep = s.signed_in("liuren", Role::Accountant).await;
    let go = s.signed_in("likai", Role::Accountant).await;
    let sup = s.signed_in("zhuguan", Role::Supervisor).await;

    assert_eq!(
        sup.post("/api/v1/reviews", &json!({"due_days": 7}))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let r = security
        .post("/api/v1/reviews", &json!({"due_days": 7}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let view: Value = r.json().await.unwrap();
    let id = view["campaign"]["id"].as_str().unwrap().to_owned();
    let lines = view["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 4, "every enabled account");
    let line = lines.iter().find(|l| l["username"] == "likai").unwrap();
    assert_eq!(line["role"], "accountant");
    assert_eq!(line["client_scope"], "assigned");
    assert!(line["permissions"]
        .as_str()
        .unwrap()
        .contains("client:update"));

    let answer = |user: &'static str, decision: &'static str| {
        let path = format!("/api/v1/reviews/{id}/lines/{user}");
        let security = &security;
        async move {
            security
                .post(
                    &path,
                    &json!({"decision": decision, "reason": "quarterly review"}),
                )
                .await
                .status()
        }
    };
    assert_eq!(answer("liuren", "certify").await, StatusCode::NO_CONTENT);
    assert_eq!(answer("likai", "revoke").await, StatusCode::NO_CONTENT);
    // The revoked line takes effect on the next request; the certified one does not change.
    assert_eq!(
        go.get("/api/v1/clients").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(keep.get("/api/v1/clients").await.status(), StatusCode::OK);
    // Answered once; nobody answers their own line.
    assert_eq!(answer("likai", "certify").await, StatusCode::CONFLICT);
    assert_eq!(
        answer("anquan", "certify").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Past the due date the unanswered lines are flagged, and escalated once a day.
    sql(
        &s,
        &[&format!(
            "UPDATE review_campaigns SET due_at = 0 WHERE id = '{id}'"
        )],
    )
    .await;
    let view: Value = security
        .get(&format!("/api/v1/reviews/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let overdue: Vec<&str> = view["overdue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(overdue, vec!["anquan", "zhuguan"]);
    let raised = s.app.review_escalations().await.unwrap();
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].rule, "access_review_overdue");
    assert!(s.app.review_escalations().await.unwrap().is_empty());
    // A campaign this recent means the quarterly schedule waits.
    assert!(s.app.review_schedule(90, 14).await.unwrap().is_none());

    let actions: Vec<String> = s.audit().await.into_iter().map(|e| e.action).collect();
    assert_eq!(actions.iter().filter(|a| *a == "review_started").count(), 1);
    assert_eq!(actions.iter().filter(|a| *a == "review_decided").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_security_admin_screens_move_people_and_run_reviews() {
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let moving = s.signed_in("diaogang", Role::Accountant).await;
    let page = security.get("/users").await.text().await.unwrap();
    assert!(page.contains("diaogang") && page.contains("anquan"));
    let csrf = csrf_of(&page);
    let r = security
        .client
        .post(security.url("/users/diaogang/role"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("role", "sales"),
            ("reason", "moved to sales"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The moved user's session ended with the change; the new role is in force.
    assert_eq!(
        moving.get("/api/v1/session").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let eff: Value = security
        .get("/api/v1/users/diaogang/permissions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(eff["role"], "sales");

    let r = security
        .client
        .post(security.url("/reviews"))
        .form(&[("csrf", csrf.as_str()), ("due_days", "10")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let review = r.headers()["location"].to_str().unwrap().to_owned();
    let page = security.get(&review).await.text().await.unwrap();
    assert!(page.contains("diaogang"));
    let r = security
        .client
        .post(security.url(&format!("{review}/lines/diaogang")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("decision", "revoke"),
            ("reason", "left the firm"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = s
        .client(false)
        .post(s.url("/api/v1/session"))
        .json(&serde_json::json!({"username": "diaogang", "password": "A fresh pass phrase for tests"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a revoked account cannot sign in"
    );
    drop(moving);
    // Nobody else sees these screens.
    let sup = s.signed_in("zhuguan", Role::Supervisor).await;
    assert_eq!(sup.get("/users").await.status(), StatusCode::FORBIDDEN);
}

async fn a_supervisor_answers_the_lines_of_their_team(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let lead = s.signed_in("zuzhang", Role::Supervisor).await;
    let member = s.signed_in("zuyuan", Role::Accountant).await;
    let _other = s.signed_in("waizu", Role::Accountant).await;
    let teamless = s.signed_in("laoban", Role::Supervisor).await;
    for (user, team) in [("zuzhang", "一组"), ("zuyuan", "一组"), ("waizu", "二组")] {
        let r = security
            .put(
                &format!("/api/v1/users/{user}/team"),
                &json!({"team": team, "reason": "组织架构"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let r = security
        .post("/api/v1/reviews", &json!({"due_days": 7}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let view: Value = r.json().await.unwrap();
    let id = view["campaign"]["id"].as_str().unwrap().to_owned();
    let line = view["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["username"] == "zuyuan")
        .unwrap()
        .clone();
    assert_eq!(line["client_scope"], "assigned");

    // The team lead sees only their team's members, not themselves and not the other team.
    let team: Value = lead
        .get(&format!("/api/v1/reviews/{id}/team"))
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = team["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["zuyuan"]);
    // A supervisor without a team has no team lines; the whole review stays the security
    // administrator's.
    assert_eq!(
        teamless
            .get(&format!("/api/v1/reviews/{id}/team"))
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        lead.get(&format!("/api/v1/reviews/{id}")).await.status(),
        StatusCode::FORBIDDEN
    );
    let answer = |who: &'static str, decision: &'static str| {
        let path = format!("/api/v1/reviews/{id}/team/{who}");
        let lead = &lead;
        async move {
            lead.post(&path, &json!({"decision": decision, "reason": "季度复核"}))
                .await
                .status()
        }
    };
    // Outside the team answers like a line that does not exist.
    assert_eq!(answer("waizu", "revoke").await, StatusCode::NOT_FOUND);
    // Nobody answers their own line.
    assert_eq!(
        answer("zuzhang", "certify").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // The lead revokes their member's access: it takes effect at once.
    assert_eq!(answer("zuyuan", "revoke").await, StatusCode::NO_CONTENT);
    assert_eq!(
        member.get("/api/v1/clients").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let view: Value = security
        .get(&format!("/api/v1/reviews/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let line = view["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["username"] == "zuyuan")
        .unwrap();
    assert_eq!(line["decision"], "revoked");
    assert_eq!(line["decided_by"], "zuzhang");
    let page = lead.get("/team-review").await.text().await.unwrap();
    assert!(page.contains("zuyuan") && !page.contains("waizu"), "{page}");
}
