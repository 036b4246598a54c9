//! Erasing a client destroys its data key, so it needs two people: one supervisor asks with a
//! reason, and a different one approves. Until then the client and its ciphertext stay; the
//! approval erases everything in one transaction with its event, and the ledger keeps it
//! erased.

mod common;

use common::{client_body, csrf_of, id_number, Backend, Session, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_policy::Role;

on_both_stores!(
    a_client_is_erased_only_when_a_second_supervisor_approves,
    a_rejected_or_withdrawn_request_leaves_the_client,
    two_approvals_at_once_erase_once,
    the_web_ui_asks_on_the_client_page_and_decides_on_the_erasures_page,
    a_supervisor_decides_only_within_their_team
);

/// How many rows a query over the raw database counts; `?1` is the one parameter.
async fn count(s: &TestServer, query: &str, param: &str) -> i64 {
    match &s.database {
        zf_server::DatabaseChoice::Sqlite(path) => rusqlite::Connection::open(path)
            .unwrap()
            .query_row(query, [param], |r| r.get(0))
            .unwrap(),
        zf_server::DatabaseChoice::Postgres(url) => {
            let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            c.query_one(&query.replace("?1", "$1"), &[&param])
                .await
                .unwrap()
                .get(0)
        }
    }
}

/// A client with a financial record and a document, all sealed under its own key; returns the
/// client's id and the document's.
async fn client_with_records(who: &Session, n: u32) -> (String, String) {
    let c = who.create_client(&client_body(n, &id_number(n))).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let r = who
        .post(
            &format!("/api/v1/clients/{id}/financials"),
            &json!({"period": "2026-09", "revenue": 1_200_000, "cost": 800_000, "vat": 36_000,
                    "cit": 0, "iit_withheld": 0}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = who
        .post_bytes(
            &format!("/api/v1/clients/{id}/documents?kind=other&name=licence.pdf"),
            b"%PDF-1.4\n%%EOF\n".to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let document: Value = r.json().await.unwrap();
    (id, document["id"].as_str().unwrap().to_owned())
}

fn decision(approve: bool, reason: &str) -> Value {
    json!({"approve": approve, "reason": reason})
}

async fn message(r: reqwest::Response) -> String {
    let body: Value = r.json().await.unwrap();
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn a_client_is_erased_only_when_a_second_supervisor_approves(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let asks = s.signed_in("zhuguan", Role::Supervisor).await;
    let approves = s.signed_in("fuzeren", Role::Supervisor).await;
    let accountant = s.signed_in("kuaiji", Role::Accountant).await;
    let (id, document) = client_with_records(&asks, 941).await;
    let r = asks
        .put(
            &format!("/api/v1/clients/{id}/assignment"),
            &json!({"accountant": "kuaiji"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let client = format!("/api/v1/clients/{id}");
    let keys = "SELECT COUNT(*) FROM client_keys WHERE client_id = ?1";

    // Bad requests change nothing: no reason, too short a reason, unknown fields.
    for body in [
        json!({"reason": "  "}),
        json!({"reason": "删"}),
        json!({"reason": "x".repeat(201)}),
        json!({"reason": "客户注销", "now": true}),
    ] {
        let r = asks.post(&format!("{client}/erasure"), &body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    // The accountant may not even ask.
    let r = accountant
        .post(
            &format!("{client}/erasure"),
            &json!({"reason": "客户已注销"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let all: Value = approves.get("/api/v1/erasures").await.json().await.unwrap();
    assert_eq!(all, json!([]));

    // Supervisor A asks: 202 with the request; nothing is erased.
    let r = asks
        .post(
            &format!("{client}/erasure"),
            &json!({"reason": "客户已注销，合同终止，按约定删除资料"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let request: Value = r.json().await.unwrap();
    assert_eq!(request["status"], "pending");
    assert_eq!(request["client_id"], id.as_str());
    assert_eq!(request["client_name"], "上海测试贸易有限公司941");
    assert_eq!(request["requested_by"], "zhuguan");
    assert!(request["decided_by"].is_null());
    let rid = request["id"].as_str().unwrap().to_owned();
    let decide = format!("/api/v1/erasures/{rid}");
    // A second request for the same client, by either door, is refused while one is pending.
    for who in [&asks, &approves] {
        let r = who
            .delete_with(&client, &json!({"reason": "重复申请删除"}))
            .await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
    }
    assert_eq!(asks.get(&client).await.status(), StatusCode::OK);
    assert_eq!(
        asks.get(&format!("{client}/financials")).await.status(),
        StatusCode::OK
    );
    assert_eq!(count(&s, keys, &id).await, 1);
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM client_records WHERE client_id = ?1",
            &id
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM record_blobs WHERE record_id = ?1",
            &document
        )
        .await,
        1
    );

    // The list shows what the approver needs.
    let pending: Value = approves
        .get("/api/v1/erasures?status=pending")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    assert_eq!(pending[0]["id"], rid.as_str());
    assert_eq!(pending[0]["client_name"], "上海测试贸易有限公司941");
    assert_eq!(pending[0]["reason"], "客户已注销，合同终止，按约定删除资料");
    assert!(pending[0]["requested_at"].as_i64().unwrap() > 0);
    let none: Value = approves
        .get("/api/v1/erasures?status=approved")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!([]));
    assert_eq!(
        approves.get("/api/v1/erasures?status=gone").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // A cannot approve their own request; the accountant may neither list nor decide; a
    // decision without a reason is refused. None of it changes anything.
    let r = asks.post(&decide, &decision(true, "我确认删除")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(r).await.contains("second person"));
    assert_eq!(
        accountant
            .post(&decide, &decision(true, "我确认删除"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        accountant.get("/api/v1/erasures").await.status(),
        StatusCode::FORBIDDEN
    );
    let r = approves.post(&decide, &decision(true, "")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = approves
        .post(&decide, &json!({"approve": "yes", "reason": "同意删除"}))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        approves
            .post(
                "/api/v1/erasures/no-such-request",
                &decision(true, "同意删除")
            )
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(asks.get(&client).await.status(), StatusCode::OK);
    assert_eq!(count(&s, keys, &id).await, 1);

    // Supervisor B approves: the client, its records, documents, index entries and key go in
    // that moment.
    let r = approves
        .post(&decide, &decision(true, "已核对注销证明，同意删除"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let decided: Value = r.json().await.unwrap();
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["decided_by"], "fuzeren");
    assert_eq!(decided["decision_reason"], "已核对注销证明，同意删除");
    for who in [&asks, &approves, &accountant] {
        assert_eq!(who.get(&client).await.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(count(&s, keys, &id).await, 0);
    for (table, column) in [
        ("clients", "id"),
        ("client_records", "client_id"),
        ("client_erasures", "client_id"),
    ] {
        let expected = i64::from(table == "client_erasures");
        assert_eq!(
            count(
                &s,
                &format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?1"),
                &id
            )
            .await,
            expected,
            "{table}"
        );
    }
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM record_blobs WHERE record_id = ?1",
            &document
        )
        .await,
        0
    );
    let ledger = std::fs::read_to_string(s.data_dir().join("erasures.ledger")).unwrap();
    assert!(ledger.contains(&id), "{ledger}");

    // The audit trail names both people and both reasons.
    let events = s.audit().await;
    let of = |action: &str| {
        events
            .iter()
            .filter(|e| e.action == action && e.record_id.as_deref() == Some(id.as_str()))
            .collect::<Vec<_>>()
    };
    let asked = of("erasure_requested");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].actor_name, "zhuguan");
    assert_eq!(
        asked[0].detail.as_deref(),
        Some("客户已注销，合同终止，按约定删除资料")
    );
    let erased = of("client_deleted");
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0].actor_name, "fuzeren");
    let detail = erased[0].detail.as_deref().unwrap();
    assert!(
        detail.contains("requested by zhuguan") && detail.contains("approved by fuzeren"),
        "{detail}"
    );
    assert!(detail.contains("已核对注销证明"), "{detail}");

    // Decided once: deciding again is refused, either way, by anyone.
    for (who, approve) in [(&approves, true), (&approves, false), (&asks, false)] {
        assert_eq!(
            who.post(&decide, &decision(approve, "再议一次"))
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
    }
    let all: Value = asks.get("/api/v1/erasures").await.json().await.unwrap();
    assert_eq!(all[0]["status"], "approved", "{all}");
    assert_eq!(all[0]["client_name"], "上海测试贸易有限公司941");
    assert_eq!(
        s.audit()
            .await
            .iter()
            .filter(|e| e.action == "client_deleted")
            .count(),
        1
    );
}

async fn a_rejected_or_withdrawn_request_leaves_the_client(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let asks = s.signed_in("zhuguan", Role::Supervisor).await;
    let decides = s.signed_in("fuzeren", Role::Supervisor).await;
    let id = client_with_records(&asks, 951).await.0;
    let client = format!("/api/v1/clients/{id}");

    // The old door: DELETE now asks, with the same body, and answers 202.
    let r = asks
        .delete_with(&client, &json!({"reason": "误建的重复客户"}))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let request: Value = r.json().await.unwrap();
    assert_eq!(request["status"], "pending");
    let decide = format!("/api/v1/erasures/{}", request["id"].as_str().unwrap());
    // Without a body it is refused and asks for one.
    let r = asks.delete(&client).await;
    assert!(r.status().is_client_error(), "{}", r.status());

    let r = decides
        .post(&decide, &decision(false, "该客户仍有未结合同"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let decided: Value = r.json().await.unwrap();
    assert_eq!(decided["status"], "rejected");
    assert_eq!(decided["decided_by"], "fuzeren");
    assert_eq!(asks.get(&client).await.status(), StatusCode::OK);
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM client_keys WHERE client_id = ?1",
            &id
        )
        .await,
        1
    );
    assert_eq!(
        decides
            .post(&decide, &decision(true, "改为同意"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let rejected: Vec<_> = s
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == "erasure_rejected")
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].actor_name, "fuzeren");
    assert!(rejected[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("requested by zhuguan"));

    // Once decided, a new request may be made; its requester may withdraw it (never approve).
    let r = asks
        .post(
            &format!("{client}/erasure"),
            &json!({"reason": "合同已结清，再次申请"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let again: Value = r.json().await.unwrap();
    let decide = format!("/api/v1/erasures/{}", again["id"].as_str().unwrap());
    let r = asks.post(&decide, &decision(false, "撤回申请")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "rejected");
    assert_eq!(asks.get(&client).await.status(), StatusCode::OK);
    assert!(!s.audit().await.iter().any(|e| e.action == "client_deleted"));
}

async fn two_approvals_at_once_erase_once(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let asks = s.signed_in("zhuguan", Role::Supervisor).await;
    let first = s.signed_in("fuzeren", Role::Supervisor).await;
    let second = s.signed_in("jingli", Role::Supervisor).await;
    let id = client_with_records(&asks, 961).await.0;
    let r = asks
        .post(
            &format!("/api/v1/clients/{id}/erasure"),
            &json!({"reason": "客户要求删除全部资料"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let request: Value = r.json().await.unwrap();
    let decide = format!("/api/v1/erasures/{}", request["id"].as_str().unwrap());
    let body = decision(true, "同意删除");
    let (a, b) = tokio::join!(first.post(&decide, &body), second.post(&decide, &body));
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::NOT_FOUND]);
    let events = s.audit().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "client_deleted")
            .count(),
        1
    );
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM client_erasures WHERE client_id = ?1",
            &id
        )
        .await,
        1
    );
}

async fn the_web_ui_asks_on_the_client_page_and_decides_on_the_erasures_page(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let asks = s.signed_in("zhuguan", Role::Supervisor).await;
    let approves = s.signed_in("fuzeren", Role::Supervisor).await;
    let accountant = s.signed_in("kuaiji", Role::Accountant).await;
    let id = client_with_records(&asks, 971).await.0;
    let r = asks
        .put(
            &format!("/api/v1/clients/{id}/assignment"),
            &json!({"accountant": "kuaiji"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // The client page offers the request to whoever may ask, and to nobody else; the link to
    // the approvers' page is in the navigation of whoever may approve.
    let page = asks
        .get(&format!("/clients/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("request-erasure"), "{page}");
    assert!(page.contains("href=\"/erasures\""));
    let theirs = accountant
        .get(&format!("/clients/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!theirs.contains("request-erasure"));
    assert!(!theirs.contains("href=\"/erasures\""));

    let form =
        |csrf: &str, reason: &str| vec![("csrf", csrf.to_owned()), ("reason", reason.to_owned())];
    let r = asks
        .client
        .post(asks.url(&format!("/clients/{id}/erasure")))
        .form(&form(&csrf_of(&page), "短"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = asks
        .client
        .post(asks.url(&format!("/clients/{id}/erasure")))
        .form(&form(&csrf_of(&page), "客户已注销，申请删除"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let page = asks
        .get(&format!("/clients/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("erasure-pending"), "{page}");
    assert!(!page.contains("request-erasure"));

    // The requester's own row offers only withdrawal; the second supervisor's offers approval.
    let own = asks.get("/erasures").await.text().await.unwrap();
    assert!(own.contains("上海测试贸易有限公司971"), "{own}");
    assert!(!own.contains("value=\"approve\""), "{own}");
    let list = approves.get("/erasures").await.text().await.unwrap();
    assert!(list.contains("value=\"approve\""), "{list}");
    let rid = list
        .split("action=\"/erasures/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    // Forged by hand, the requester's approval is refused on the page too.
    let r = asks
        .client
        .post(asks.url(&format!("/erasures/{rid}")))
        .form(&[
            ("csrf", csrf_of(&own).as_str()),
            ("reason", "我自己批准"),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("second person"));
    let r = approves
        .client
        .post(approves.url(&format!("/erasures/{rid}")))
        .form(&[
            ("csrf", csrf_of(&list).as_str()),
            ("reason", "核实无误，同意删除"),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(
        asks.get(&format!("/api/v1/clients/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let list = approves.get("/erasures").await.text().await.unwrap();
    assert!(
        list.contains("approved") && list.contains("fuzeren"),
        "{list}"
    );
    // A second click on a stale page changes nothing.
    let r = approves
        .client
        .post(approves.url(&format!("/erasures/{rid}")))
        .form(&[
            ("csrf", csrf_of(&list).as_str()),
            ("reason", "再次批准"),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn a_supervisor_decides_only_within_their_team(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let asks = s.signed_in("zhuguan", Role::Supervisor).await;
    let other_team = s.signed_in("erzu", Role::Supervisor).await;
    let same_team = s.signed_in("yizu", Role::Supervisor).await;
    let _accountant = s.signed_in("kuaiji", Role::Accountant).await;
    let id = client_with_records(&asks, 981).await.0;
    let r = asks
        .put(
            &format!("/api/v1/clients/{id}/assignment"),
            &json!({"accountant": "kuaiji", "team": "一组"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    for (user, team) in [("erzu", "二组"), ("yizu", "一组")] {
        let r = security
            .put(
                &format!("/api/v1/users/{user}/team"),
                &json!({"team": team, "reason": "组织调整"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{user}");
    }
    let r = asks
        .post(
            &format!("/api/v1/clients/{id}/erasure"),
            &json!({"reason": "客户迁出本所"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let request: Value = r.json().await.unwrap();
    let decide = format!("/api/v1/erasures/{}", request["id"].as_str().unwrap());
    // The other team's supervisor neither sees the request nor can decide it.
    let theirs: Value = other_team
        .get("/api/v1/erasures")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs, json!([]));
    for approve in [true, false] {
        assert_eq!(
            other_team
                .post(&decide, &decision(approve, "不属于本组"))
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        asks.get(&format!("/api/v1/clients/{id}")).await.status(),
        StatusCode::OK
    );
    let ours: Value = same_team
        .get("/api/v1/erasures")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ours.as_array().unwrap().len(), 1, "{ours}");
    let r = same_team
        .post(&decide, &decision(true, "本组确认删除"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        asks.get(&format!("/api/v1/clients/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
}
