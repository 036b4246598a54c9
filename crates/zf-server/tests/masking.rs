//! Masked values never reach a client in the clear unless revealed: not in list views, detail
//! views, search results, exact-search answers, web pages or error messages. Each response body
//! is searched for the full value.

mod common;

use common::{client_body, id_number, Backend, Session, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_policy::Role;

on_both_stores!(masked_values_stay_masked_everywhere_until_revealed);

async fn body_of(s: &Session, path: &str) -> String {
    let r = s.get(path).await;
    assert!(r.status().is_success(), "{path} → {}", r.status());
    r.text().await.unwrap()
}

async fn masked_values_stay_masked_everywhere_until_revealed(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    let sales = s.signed_in("xiaoshou", Role::Sales).await;
    let legal_rep = id_number(31);
    let contact_id = id_number(32);
    let account = "6222020200556677889";
    let client = boss.create_client(&client_body(31, &legal_rep)).await;
    let id = client["id"].as_str().unwrap().to_owned();
    let r = boss
        .post(
            &format!("/api/v1/clients/{id}/contacts"),
            &json!({"name": "孙八", "mobile": "13600001111", "id_number": contact_id}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = boss
        .post(
            &format!("/api/v1/clients/{id}/financials"),
            &json!({"period": "2026-06", "revenue": 100, "cost": 50, "vat": 3, "cit": 0,
                    "iit_withheld": 0, "bank_accounts": [{"bank": "建设银行", "number": account}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let full = [legal_rep.as_str(), contact_id.as_str()];
    let never_in = |what: &str, body: &str| {
        for v in full {
            assert!(!body.contains(v), "{what} shows {v} in the clear: {body}");
        }
    };

    // Sales: ID numbers masked in the list, the detail, the search answer, the contacts, and the
    // web pages.
    let list = body_of(&sales, "/api/v1/clients").await;
    never_in("client list", &list);
    assert!(list.contains("\"masked\""), "{list}");
    never_in(
        "client detail",
        &body_of(&sales, &format!("/api/v1/clients/{id}")).await,
    );
    let r = sales
        .post(
            "/api/v1/clients/search",
            &json!({"legal_rep_id_number": legal_rep}),
        )
        .await;
    let found = r.text().await.unwrap();
    assert!(found.contains(&id), "the search finds the client: {found}");
    never_in("search result", &found);
    let contacts = body_of(&sales, &format!("/api/v1/clients/{id}/contacts")).await;
    never_in("contacts", &contacts);
    assert!(
        contacts.contains("13600001111"),
        "sales see mobiles: {contacts}"
    );
    never_in("client list page", &body_of(&sales, "/clients").await);
    never_in(
        "client page",
        &body_of(&sales, &format!("/clients/{id}")).await,
    );
    never_in(
        "contacts page",
        &body_of(&sales, &format!("/clients/{id}/contacts")).await,
    );
    // Exact search on contacts answers masked even to the supervisor.
    let r = boss
        .post("/api/v1/contacts/search", &json!({"id_number": contact_id}))
        .await;
    let found = r.text().await.unwrap();
    assert!(found.contains("孙八"), "{found}");
    never_in("contact search", &found);

    // Bank accounts: the supervisor sees them; sales do not reach the books at all.
    let books = body_of(&boss, &format!("/api/v1/clients/{id}/financials")).await;
    assert!(
        books.contains(account),
        "the supervisor sees the account: {books}"
    );
    let r = sales.get(&format!("/api/v1/clients/{id}/financials")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!r.text().await.unwrap().contains(account));

    // Error messages do not echo what was sent.
    let mut bad = client_body(32, &legal_rep);
    let wrong = format!("{}0", &legal_rep[..17]);
    bad["legal_rep_id_number"] = json!(wrong);
    let r = boss.post("/api/v1/clients", &bad).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error = r.text().await.unwrap();
    assert!(
        !error.contains(&wrong) && !error.contains(&wrong[..14]),
        "{error}"
    );
    let r = boss
        .post(
            &format!("/api/v1/clients/{id}/contacts"),
            &json!({"name": "孙八", "mobile": "12600001111"}),
        )
        .await;
    let error = r.text().await.unwrap();
    assert!(!error.contains("12600001111"), "{error}");

    // Revealed on purpose, with a reason, it is shown — and audited.
    let r = sales
        .post(
            &format!("/api/v1/clients/{id}/reveal"),
            &json!({"field": "legal_rep_id_number", "reason": "办理工商变更需核对"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["value"]["value"], legal_rep.as_str());
    assert!(s
        .audit()
        .await
        .iter()
        .any(|e| e.action == "field_revealed" && e.actor_name == "xiaoshou"));
}
