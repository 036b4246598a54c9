//! The firm's daily work through the real server, on both stores: the seed's own example,
//! records reachable only through an assigned client, filings from the calendar, custody
//! movements, fees, leads, and malformed input refused without a change.

mod common;

use common::{client_body, id_number, Backend, Session, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_policy::Role;

on_both_stores!(
    the_seeds_example_accountant_reads_the_books_cannot_touch_the_contract_sees_no_other_client,
    records_of_an_unassigned_client_answer_404_on_every_client_route,
    filings_are_generated_from_the_calendar_and_worked_to_filed,
    custody_movements_are_recorded_audited_and_overdue_is_flagged,
    fees_bill_by_cycle_and_show_arrears_and_renewals,
    leads_become_clients,
    an_engaged_auditor_reads_that_clients_books_only_and_writes_nothing,
    malformed_input_gets_a_clear_4xx_and_changes_nothing,
);

/// A supervisor who assigns, and an accountant with one client of their own.
async fn firm(s: &TestServer) -> (Session, Session, String, String) {
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    let acct = s.signed_in("kuaiji", Role::Accountant).await;
    let mine = boss.create_client(&client_body(1, &id_number(1))).await;
    let other = boss.create_client(&client_body(2, &id_number(2))).await;
    let (mine, other) = (
        mine["id"].as_str().unwrap().to_owned(),
        other["id"].as_str().unwrap().to_owned(),
    );
    let r = boss
        .put(
            &format!("/api/v1/clients/{mine}/assignment"),
            &json!({"accountant": "kuaiji", "team": "一组"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    (boss, acct, mine, other)
}

fn contract_body() -> Value {
    json!({
        "contract_type": "bookkeeping",
        "fee": 50_000,
        "billing_cycle": "monthly",
        "starts_on": "2026-01-01",
        "ends_on": "2026-12-31",
    })
}

fn financial_body() -> Value {
    json!({
        "period": "2026-03",
        "revenue": 12_345_678,
        "cost": 9_876_543,
        "vat": 370_370,
        "cit": 0,
        "iit_withheld": 12_000,
        "bank_accounts": [{"bank": "中国工商银行上海分行", "number": "6222020200112233445"}],
    })
}

async fn the_seeds_example_accountant_reads_the_books_cannot_touch_the_contract_sees_no_other_client(
    b: Backend,
) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let (boss, acct, mine, other) = firm(&s).await;
    // The supervisor keeps the books and signs the contract.
    let r = boss
        .post(
            &format!("/api/v1/clients/{mine}/financials"),
            &financial_body(),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let r = boss
        .post(
            &format!("/api/v1/clients/{mine}/contracts"),
            &contract_body(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let contract: Value = r.json().await.unwrap();
    let contract_id = contract["id"].as_str().unwrap();

    // The accountant reads the financial records of the assigned client…
    let r = acct
        .get(&format!("/api/v1/clients/{mine}/financials"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let books: Value = r.json().await.unwrap();
    assert_eq!(books[0]["revenue"], 12_345_678);
    assert_eq!(books[0]["profit"], 12_345_678 - 9_876_543);
    assert_eq!(
        books[0]["bank_accounts"][0]["number"]["value"],
        "6222020200112233445"
    );
    // …reads the contract but cannot modify it (403)…
    let r = acct.get(&format!("/api/v1/clients/{mine}/contracts")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut changed = contract_body();
    changed["fee"] = json!(1);
    let r = acct
        .put(
            &format!("/api/v1/clients/{mine}/contracts/{contract_id}"),
            &changed,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = acct
        .post(
            &format!("/api/v1/clients/{mine}/contracts"),
            &contract_body(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // …and does not see the unassigned client at all: 404, as for a client that does not exist.
    for path in [
        format!("/api/v1/clients/{other}"),
        format!("/api/v1/clients/{other}/financials"),
        format!("/api/v1/clients/{other}/contracts"),
        format!("/api/v1/clients/{}/financials", uuid_nil()),
    ] {
        let r = acct.get(&path).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let list: Value = acct.get("/api/v1/clients").await.json().await.unwrap();
    assert_eq!(list["total"], 1);
    // The contract is untouched, and the refusals and the reads are in the audit log.
    let r: Value = boss
        .get(&format!("/api/v1/clients/{mine}/contracts"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r[0]["fee"], 50_000);
    let events = s.audit().await;
    assert!(events.iter().any(|e| e.action == "access_denied"
        && e.actor_name == "kuaiji"
        && e.detail
            .as_deref()
            .unwrap_or("")
            .contains("contract_update")));
    assert!(events.iter().any(|e| e.action == "record_sensitive_read"
        && e.actor_name == "kuaiji"
        && e.resource.as_deref() == Some("financial_record")));
    // An auditor reads the books too, but cannot write anything, and bank accounts are masked.
    let auditor = s.signed_in("shenji", Role::Auditor).await;
    let r = boss
        .put(
            &format!("/api/v1/clients/{mine}/assignment"),
            &json!({"accountant": "kuaiji"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = auditor
        .post(
            &format!("/api/v1/clients/{mine}/financials"),
            &financial_body(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

fn uuid_nil() -> &'static str {
    "00000000-0000-4000-8000-000000000000"
}

async fn records_of_an_unassigned_client_answer_404_on_every_client_route(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let (_boss, acct, _mine, other) = firm(&s).await;
    let before = s.audit().await.len();
    let mut cases = 0;
    for spec in zf_server::route_table() {
        let Some(rest) = spec.path.strip_prefix("/api/v1/clients/{id}") else {
            continue;
        };
        let zf_policy::Requirement::Permission(p) = spec.operation.requirement() else {
            continue;
        };
        if !Role::Accountant.may(p) {
            continue;
        }
        let path = format!(
            "/api/v1/clients/{other}{}",
            rest.replace("{record_id}", uuid_nil())
        );
        let method = match spec.verb {
            zf_server::routes::Verb::Get => reqwest::Method::GET,
            zf_server::routes::Verb::Post => reqwest::Method::POST,
            zf_server::routes::Verb::Put => reqwest::Method::PUT,
            zf_server::routes::Verb::Patch => reqwest::Method::PATCH,
            zf_server::routes::Verb::Delete => reqwest::Method::DELETE,
        };
        // A well-formed body where one is needed, so the answer is about the client, not it.
        let body = match (spec.verb, rest) {
            (_, "/contacts") | (_, "/contacts/{record_id}") => json!({"name": "王五"}),
            (_, "/financials") | (_, "/financials/{record_id}") => financial_body(),
            (_, "/filings/generate") => json!({"year": 2026}),
            (_, "/filings/{record_id}") => json!({"status": "filed"}),
            (_, "/interactions") | (_, "/interactions/{record_id}") => json!({
                "kind": "call", "occurred_on": "2026-03-01", "summary": "催收资料"}),
            (_, "/custody/{record_id}/moves") => json!({"action": "check_in"}),
            (_, "") => json!({"name": "改名有限公司"}),
            _ => json!({}),
        };
        let r = acct
            .client
            .request(method, acct.url(&path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        cases += 1;
        let ok = status == StatusCode::NOT_FOUND
            // Uploads and reveal refuse the request body first; still nothing about the client.
            || (status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST)
                && !matches!(spec.verb, zf_server::routes::Verb::Get);
        assert!(ok, "{:?} {path} → {status}", spec.verb);
    }
    assert!(cases >= 15, "{cases} routes checked");
    println!("{cases} client routes answered 404 for an unassigned client");
    // Nothing of the other client was read or written.
    let after = s.audit().await;
    assert!(after[before..]
        .iter()
        .all(|e| e.record_id.as_deref() != Some(other.as_str()) || e.outcome != "success"));
}

async fn filings_are_generated_from_the_calendar_and_worked_to_filed(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let (boss, acct, mine, _other) = firm(&s).await;
    // client_body makes general taxpayers; make a small-scale one too.
    let mut small = client_body(3, &id_number(3));
    small["taxpayer_type"] = json!("small_scale");
    let small = boss.create_client(&small).await;
    let small_id = small["id"].as_str().unwrap();
    for (id, expected) in [(mine.as_str(), 42), (small_id, 26)] {
        let r = boss
            .post(
                &format!("/api/v1/clients/{id}/filings/generate"),
                &json!({"year": 2026}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let g: Value = r.json().await.unwrap();
        assert_eq!(g["created"], expected, "{g}");
        assert_eq!(g["calendar_source"], "税总办征科函〔2025〕64号");
        // Generating again adds nothing.
        let g: Value = boss
            .post(
                &format!("/api/v1/clients/{id}/filings/generate"),
                &json!({"year": 2026}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(g["created"], 0);
    }
    let tasks: Value = acct
        .get(&format!("/api/v1/clients/{mine}/filings"))
        .await
        .json()
        .await
        .unwrap();
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 42);
    // December 2025's VAT is due on 20 January 2026: the calendar moved it from the 15th.
    let dec_vat = tasks
        .iter()
        .find(|t| t["tax"] == "vat" && t["period"] == "2025-12")
        .expect("December VAT");
    assert_eq!(dec_vat["due"], "2026-01-20");
    // Everything due before today (2026-11-29 or later) and not filed is overdue.
    assert_eq!(dec_vat["status"], "overdue");
    let annual = tasks.iter().find(|t| t["tax"] == "cit_annual").unwrap();
    assert_eq!(annual["due"], "2026-05-31");
    let id = dec_vat["id"].as_str().unwrap();
    let r = acct
        .patch(
            &format!("/api/v1/clients/{mine}/filings/{id}"),
            &json!({"status": "filed", "note": "电子税务局已申报"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let filed: Value = r.json().await.unwrap();
    assert_eq!(filed["status"], "filed");
    let r = acct
        .patch(
            &format!("/api/v1/clients/{mine}/filings/{id}"),
            &json!({"status": "overdue"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The accountant's dashboard lists only their own client's overdue tasks.
    let due: Value = acct.get("/api/v1/filings/due").await.json().await.unwrap();
    let overdue = due["overdue"].as_array().unwrap();
    assert!(!overdue.is_empty());
    assert!(overdue.iter().all(|t| t["client_id"] == mine.as_str()));
    assert!(overdue.iter().all(|t| t["id"] != id));
}

async fn custody_movements_are_recorded_audited_and_overdue_is_flagged(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let (boss, acct, mine, _other) = firm(&s).await;
    let r = boss
        .post(
            &format!("/api/v1/clients/{mine}/custody"),
            &json!({"kind": "tax_ukey", "description": "税务UKey（蓝色）"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let item: Value = r.json().await.unwrap();
    let item_id = item["id"].as_str().unwrap();
    assert_eq!(item["status"], "in_safe");
    let moves = format!("/api/v1/clients/{mine}/custody/{item_id}/moves");
    let r = acct
        .post(
            &moves,
            &json!({"action": "check_out", "reason": "三月增值税申报", "due_back": "2099-03-20"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["status"], "checked_out");
    assert_eq!(out["overdue"], false);
    // Out twice is refused; in, then the history shows both movements.
    let r = acct
        .post(
            &moves,
            &json!({"action": "check_out", "reason": "再借", "due_back": "2099-03-21"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = acct.post(&moves, &json!({"action": "check_in"})).await;
    let back: Value = r.json().await.unwrap();
    assert_eq!(back["status"], "in_safe");
    assert_eq!(back["movements"].as_array().unwrap().len(), 2);
    let events = s.audit().await;
    let out_event = events
        .iter()
        .find(|e| e.action == "custody_checked_out")
        .expect("check-out audited");
    assert_eq!(out_event.actor_name, "kuaiji");
    assert!(out_event
        .detail
        .as_deref()
        .unwrap()
        .contains("三月增值税申报"));
    assert!(events.iter().any(|e| e.action == "custody_checked_in"));
    // A return date in the past is refused; an item left out past its date is overdue. The
    // store is written directly to age the movement, as time would.
    let r = acct
        .post(
            &moves,
            &json!({"action": "check_out", "reason": "x", "due_back": "2020-01-01"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    acct.post(
        &moves,
        &json!({"action": "check_out", "reason": "年报", "due_back": "2099-01-01"}),
    )
    .await;
    age_due_date(&s, item_id, "2021-06-30").await;
    let overdue: Value = acct
        .get("/api/v1/custody/overdue")
        .await
        .json()
        .await
        .unwrap();
    let overdue = overdue.as_array().unwrap();
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0]["overdue"], true);
}

/// Moves a record's due date, standing in for the passing of time.
async fn age_due_date(s: &TestServer, record: &str, due: &str) {
    let sql = format!("UPDATE client_records SET due_on = '{due}' WHERE id = '{record}'");
    match &s.database {
        zf_server::DatabaseChoice::Sqlite(path) => {
            let c = rusqlite::Connection::open(path).unwrap();
            c.execute(&sql, []).unwrap();
        }
        zf_server::DatabaseChoice::Postgres(url) => {
            let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            c.execute(&sql, &[]).await.unwrap();
        }
    }
}

async fn fees_bill_by_cycle_and_show_arrears_and_renewals(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let (boss, acct, mine, _other) = firm(&s).await;
    // 500 yuan a month from January; a quarterly contract ending soon.
    let c: Value = boss
        .post(
            &format!("/api/v1/clients/{mine}/contracts"),
            &contract_body(),
        )
        .await
        .json()
        .await
        .unwrap();
    let contract = c["id"].as_str().unwrap().to_owned();
    let today = zf_app::crm::filings::today();
    let soon = today.checked_add_days(10).unwrap();
    let r = boss
        .post(
            &format!("/api/v1/clients/{mine}/contracts"),
            &json!({
                "contract_type": "tax_filing",
                "fee": 30_000,
                "billing_cycle": "quarterly",
                "starts_on": "2026-01-01",
                "ends_on": soon.as_string(),
            }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = boss
        .post(
            &format!("/api/v1/clients/{mine}/payments"),
            &json!({"contract": contract, "amount": 200_000, "paid_on": "2026-04-01", "method": "转账"}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let report: Value = acct
        .get(&format!("/api/v1/clients/{mine}/fees"))
        .await
        .json()
        .await
        .unwrap();
    let rows = report["contracts"].as_array().unwrap();
    let monthly = rows
        .iter()
        .find(|c| c["contract"] == contract.as_str())
        .unwrap();
    // Cycles begun by today, from January, capped at December.
    let months = i64::from(today.month().min(12)) + 12 * i64::from(today.year() - 2026);
    let months = months.clamp(0, 12);
    assert_eq!(monthly["billed"], 50_000 * months);
    assert_eq!(monthly["paid"], 200_000);
    assert_eq!(monthly["arrears"], 50_000 * months - 200_000);
    let quarterly = rows
        .iter()
        .find(|c| c["contract_type"] == "tax_filing")
        .unwrap();
    assert_eq!(quarterly["renewal_due"], true);
    // The firm-wide list shows them too; a negative payment is refused.
    let arrears: Value = boss.get("/api/v1/fees/arrears").await.json().await.unwrap();
    assert!(arrears["total_arrears"].as_i64().unwrap() > 0);
    let r = boss
        .post(
            &format!("/api/v1/clients/{mine}/payments"),
            &json!({"contract": contract, "amount": -5, "paid_on": "2026-04-01"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn leads_become_clients(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let sales = s.signed_in("xiaoshou", Role::Sales).await;
    let r = sales
        .post(
            "/api/v1/leads",
            &json!({"company_name": "杭州新设科技有限公司", "contact_name": "赵六",
                    "mobile": "+86 139-1234-5678", "source": "转介绍"}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let lead: Value = r.json().await.unwrap();
    assert_eq!(lead["mobile"]["value"], "13912345678");
    assert_eq!(lead["stage"], "new");
    let id = lead["id"].as_str().unwrap();
    let r = sales
        .put(
            &format!("/api/v1/leads/{id}"),
            &json!({"company_name": "杭州新设科技有限公司", "contact_name": "赵六",
                    "mobile": "13912345678", "stage": "quoted", "version": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = client_body(7, &id_number(7));
    let r = sales
        .post(
            &format!("/api/v1/leads/{id}/convert"),
            &json!({"uscc": body["uscc"], "taxpayer_type": "small_scale",
                    "legal_rep_name": "赵六", "legal_rep_id_number": id_number(7)}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let client: Value = r.json().await.unwrap();
    assert_eq!(client["name"], "杭州新设科技有限公司");
    assert_eq!(client["status"], "signed");
    let leads: Value = sales.get("/api/v1/leads").await.json().await.unwrap();
    assert_eq!(leads[0]["stage"], "won");
    assert_eq!(leads[0]["client_id"], client["id"]);
    // Converting twice is refused; accountants have no leads.
    let r = sales
        .post(
            &format!("/api/v1/leads/{id}/convert"),
            &json!({"uscc": body["uscc"], "taxpayer_type": "small_scale",
                    "legal_rep_name": "赵六", "legal_rep_id_number": id_number(7)}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let acct = s.signed_in("kuaiji", Role::Accountant).await;
    assert_eq!(
        acct.get("/api/v1/leads").await.status(),
        StatusCode::FORBIDDEN
    );
}

async fn malformed_input_gets_a_clear_4xx_and_changes_nothing(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let (boss, _acct, mine, _other) = firm(&s).await;
    let clients = s.client_count().await;
    let records = || async {
        let mut n = 0;
        for kind in ["contacts", "contracts", "financials", "documents"] {
            let v: Value = boss
                .get(&format!("/api/v1/clients/{mine}/{kind}"))
                .await
                .json()
                .await
                .unwrap();
            n += v.as_array().unwrap().len();
        }
        n
    };
    let before = records().await;
    let expect = |status: StatusCode, want: StatusCode, what: &str, body: &str| {
        assert_eq!(status, want, "{what}: {body}");
        assert!(!body.is_empty(), "{what} says why");
    };
    // A bad USCC.
    let mut bad = client_body(9, &id_number(9));
    bad["uscc"] = json!("91310000000000009X");
    let r = boss.post("/api/v1/clients", &bad).await;
    let (st, body) = (r.status(), r.text().await.unwrap());
    expect(st, StatusCode::UNPROCESSABLE_ENTITY, "bad uscc", &body);
    assert!(body.contains("USCC"), "{body}");
    // A bad mobile.
    let r = boss
        .post(
            &format!("/api/v1/clients/{mine}/contacts"),
            &json!({"name": "王五", "mobile": "12345678901"}),
        )
        .await;
    let (st, body) = (r.status(), r.text().await.unwrap());
    expect(st, StatusCode::UNPROCESSABLE_ENTITY, "bad mobile", &body);
    // Negative and fractional fen.
    for fee in [json!(-100), json!(100.5)] {
        let mut c = contract_body();
        c["fee"] = fee.clone();
        let r = boss
            .post(&format!("/api/v1/clients/{mine}/contracts"), &c)
            .await;
        let (st, body) = (r.status(), r.text().await.unwrap());
        expect(
            st,
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("fee {fee}"),
            &body,
        );
        assert!(body.contains("whole non-negative"), "{body}");
    }
    // A "PDF" that is really a Windows executable.
    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00".to_vec();
    exe.extend(std::iter::repeat_n(0u8, 1024));
    let r = boss
        .post_bytes(
            &format!("/api/v1/clients/{mine}/documents?kind=contract&name=%E5%90%88%E5%90%8C.pdf"),
            exe,
        )
        .await;
    let (st, body) = (r.status(), r.text().await.unwrap());
    expect(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "executable", &body);
    assert!(body.contains("executable"), "{body}");
    // A 1 GB upload is refused from its length, before it is read.
    let r = boss
        .client
        .post(boss.url(&format!(
            "/api/v1/clients/{mine}/documents?kind=contract&name=big.pdf"
        )))
        .header("content-type", "application/octet-stream")
        .header("content-length", (1u64 << 30).to_string())
        .body(reqwest::Body::wrap_stream(futures::stream::iter(
            (0..16).map(|_| Ok::<_, std::io::Error>(vec![0u8; 64 * 1024])),
        )))
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE),
        // The server may close the connection once it has answered 413.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    // A CSV with broken quoting, and bytes that are no text.
    for (what, file) in [
        (
            "broken quoting",
            "客户名称,统一社会信用代码\n\"上海未闭合引号,91310000000000001X\n"
                .as_bytes()
                .to_vec(),
        ),
        ("binary", vec![0u8, 159, 146, 150, 0, 255, 254, 0, 1, 2]),
    ] {
        let r = boss.post_bytes("/api/v1/clients/import", file).await;
        let (st, body) = (r.status(), r.text().await.unwrap());
        expect(st, StatusCode::UNPROCESSABLE_ENTITY, what, &body);
    }
    assert_eq!(s.client_count().await, clients, "no client was written");
    assert_eq!(records().await, before, "no record was written");
}

async fn an_engaged_auditor_reads_that_clients_books_only_and_writes_nothing(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let (boss, _acct, mine, other) = firm(&s).await;
    let auditor = s.signed_in("shenji", Role::Auditor).await;
    for id in [&mine, &other] {
        let r = boss
            .post(
                &format!("/api/v1/clients/{id}/financials"),
                &financial_body(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let books = format!("/api/v1/clients/{mine}/financials");
    // Before the engagement the auditor reaches nothing.
    assert_eq!(auditor.get(&books).await.status(), StatusCode::NOT_FOUND);
    // Only supervisors engage, and only auditors can be engaged.
    let r = boss
        .put(
            &format!("/api/v1/clients/{mine}/auditors/kuaiji"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = boss
        .put(
            &format!("/api/v1/clients/{mine}/auditors/shenji"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = auditor.get(&books).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v[0]["revenue"], 12_345_678);
    // Bank accounts are masked to the last four digits for auditors.
    assert_eq!(v[0]["bank_accounts"][0]["number"]["visibility"], "masked");
    assert!(!v.to_string().contains("6222020200112233445"));
    // The other client does not exist for them; nothing can be written.
    assert_eq!(
        auditor
            .get(&format!("/api/v1/clients/{other}/financials"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let list: Value = auditor.get("/api/v1/clients").await.json().await.unwrap();
    assert_eq!(list["total"], 1);
    let r = auditor.post(&books, &financial_body()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = auditor
        .patch(
            &format!("/api/v1/clients/{mine}"),
            &json!({"name": "改名有限公司"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // When the engagement ends, so does the access, on the next request.
    let r = boss
        .delete(&format!("/api/v1/clients/{mine}/auditors/shenji"))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(auditor.get(&books).await.status(), StatusCode::NOT_FOUND);
    assert!(
        s.audit()
            .await
            .iter()
            .filter(|e| e.action == "engagement_changed")
            .count()
            >= 2
    );
}
