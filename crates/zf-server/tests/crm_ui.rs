//! The client-work pages through the real server, form by form, on both stores: each form is
//! shown to the roles whose permissions would let it through and refused (403) to the others,
//! a good submission is saved and shown in yuan with two decimals, and a bad one gets a page
//! that says what is wrong (422, or 409 for a stale version) while nothing changes.

mod common;

use common::{client_body, id_number, Backend, Session, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_policy::Role;

on_both_stores!(
    contracts_their_signed_pdf_financial_records_and_payments_through_the_forms,
    the_client_page_edits_allowed_fields_and_supervisors_assign,
    leads_move_through_stages_and_convert_into_clients,
    the_dashboard_pages_each_follow_their_own_permission,
);

/// A supervisor, and an accountant assigned one of the supervisor's clients.
async fn firm(s: &TestServer) -> (Session, Session, String) {
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    let acct = s.signed_in("kuaiji", Role::Accountant).await;
    let mine = boss.create_client(&client_body(1, &id_number(1))).await;
    let mine = mine["id"].as_str().unwrap().to_owned();
    let r = boss
        .put(
            &format!("/api/v1/clients/{mine}/assignment"),
            &json!({"accountant": "kuaiji", "team": "一组"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    (boss, acct, mine)
}

async fn page(who: &Session, path: &str) -> (StatusCode, String) {
    let r = who.get(path).await;
    let status = r.status();
    (status, r.text().await.unwrap())
}

/// The form token on a page the session was shown.
async fn csrf(who: &Session, path: &str) -> String {
    let (status, html) = page(who, path).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no form token on {path}"))
        .to_owned()
}

/// Posts a form; answers the status and where it redirects to, or the page it shows.
async fn post_form<F: serde::Serialize + ?Sized>(
    who: &Session,
    path: &str,
    fields: &F,
) -> (StatusCode, String) {
    let r = who
        .client
        .post(who.url(path))
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    let body = r.text().await.unwrap();
    (status, location.unwrap_or(body))
}

/// A multipart form with text fields and one file, as a browser sends it.
async fn post_upload(
    who: &Session,
    path: &str,
    fields: &[(&str, &str)],
    file_name: &str,
    content: &[u8],
) -> (StatusCode, String) {
    let boundary = "----zf-test-boundary-7d2f";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = who
        .client
        .post(who.url(path))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    let body = r.text().await.unwrap();
    (status, location.unwrap_or(body))
}

async fn json(who: &Session, path: &str) -> Value {
    let r = who.get(path).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

fn today() -> String {
    zf_app::crm::filings::today().as_string()
}

async fn contracts_their_signed_pdf_financial_records_and_payments_through_the_forms(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let (boss, acct, mine) = firm(&s).await;
    let contracts_tab = format!("/clients/{mine}/contracts");
    let contracts_api = format!("/api/v1/clients/{mine}/contracts");
    let year = zf_app::crm::filings::today().year();
    let ends = format!("{year}-12-31");
    let starts = format!("{year}-01-01");

    // The accountant reads contracts but is offered no form, and posting one anyway is refused
    // by the policy.
    let (status, html) = page(&acct, &contracts_tab).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("id=\"new-contract\""));
    let token = csrf(&acct, &contracts_tab).await;
    let contract = |token: &str, fee: &str, ends: &str| {
        vec![
            ("csrf", token.to_owned()),
            ("contract_type", "bookkeeping".to_owned()),
            ("fee", fee.to_owned()),
            ("billing_cycle", "monthly".to_owned()),
            ("status", "active".to_owned()),
            ("starts_on", starts.clone()),
            ("ends_on", ends.to_owned()),
        ]
    };
    let (status, _) = post_form(&acct, &contracts_tab, &contract(&token, "500", &ends)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The supervisor's form: the fee is typed in yuan and shown in yuan with two decimals.
    let (_, html) = page(&boss, &contracts_tab).await;
    assert!(html.contains("id=\"new-contract\""));
    let token = csrf(&boss, &contracts_tab).await;
    let (status, location) =
        post_form(&boss, &contracts_tab, &contract(&token, "1,200.5", &ends)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
    assert_eq!(location, contracts_tab);
    let (_, html) = page(&boss, &contracts_tab).await;
    assert!(html.contains("1,200.50"), "fee in yuan: {html}");
    let saved: Value = json(&boss, &contracts_api).await;
    assert_eq!(saved[0]["fee"], 120_050);
    let contract_id = saved[0]["id"].as_str().unwrap().to_owned();

    // Bad contracts: a fee with three decimals, an end before the start, a forged token.
    for (fee, end, want, says) in [
        (
            "12.345",
            ends.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "费用（元）",
        ),
        (
            "-5",
            ends.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "negative",
        ),
        (
            "500",
            "2000-01-01",
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot end before",
        ),
    ] {
        let (status, body) = post_form(&boss, &contracts_tab, &contract(&token, fee, end)).await;
        assert_eq!(status, want, "{fee} {end}: {body}");
        assert!(body.contains(says), "{fee} {end}: {body}");
        assert!(body.contains("role=\"alert\""), "{body}");
        assert!(
            body.contains(&format!("href=\"{contracts_tab}\"")),
            "the way back: {body}"
        );
    }
    let (status, _) = post_form(&boss, &contracts_tab, &contract("forged", "500", &ends)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        json(&boss, &contracts_api).await.as_array().unwrap().len(),
        1
    );

    // The signed PDF is attached to the contract; an executable dressed as one is not.
    let attach = format!("/clients/{mine}/contracts/{contract_id}/documents");
    let pdf = b"%PDF-1.4\n% signed\n%%EOF\n";
    let (status, location) =
        post_upload(&boss, &attach, &[("csrf", token.as_str())], "合同.pdf", pdf).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
    let (status, body) = post_upload(
        &boss,
        &attach,
        &[("csrf", token.as_str())],
        "合同.pdf",
        b"MZ\x90\x00 this is a program",
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let (status, _) = post_upload(&boss, &attach, &[("csrf", "forged")], "合同.pdf", pdf).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let saved: Value = json(&boss, &contracts_api).await;
    let documents = saved[0]["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 1, "one signed copy: {saved}");
    let document = documents[0].as_str().unwrap();
    let (_, html) = page(&acct, &contracts_tab).await;
    assert!(html.contains(&format!("/clients/{mine}/documents/{document}")));
    let r = acct
        .get(&format!("/clients/{mine}/documents/{document}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), pdf);
    let listed: Value = json(&boss, &format!("/api/v1/clients/{mine}/documents")).await;
    assert_eq!(listed[0]["contract"], contract_id.as_str());
    assert_eq!(listed[0]["kind"], "contract");

    // Financial records: the accountant's form, figures in yuan in, yuan out.
    let financials_tab = format!("/clients/{mine}/financials");
    let financials_api = format!("/api/v1/clients/{mine}/financials");
    let token = csrf(&acct, &financials_tab).await;
    let (_, html) = page(&acct, &financials_tab).await;
    assert!(html.contains("id=\"new-financial\""));
    let record = |revenue: &str, bank: &str, account: &str| {
        vec![
            ("csrf", token.clone()),
            ("period", format!("{year}-Q1")),
            ("revenue", revenue.to_owned()),
            ("cost", "100000".to_owned()),
            ("vat", "1,234.56".to_owned()),
            ("cit", "0".to_owned()),
            ("iit_withheld", "88.8".to_owned()),
            ("bank", bank.to_owned()),
            ("account", account.to_owned()),
            ("notes", String::new()),
        ]
    };
    for (revenue, bank, account, says) in [
        ("-1", "", "", "收入"),
        ("1.001", "", "", "decimal"),
        ("abc", "", "", "收入"),
        ("100", "招商银行", "", "同时填写"),
        ("100", "招商银行", "12ab", "银行账号"),
    ] {
        let (status, body) =
            post_form(&acct, &financials_tab, &record(revenue, bank, account)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{revenue}: {body}"
        );
        assert!(body.contains(says), "{revenue} {bank} {account}: {body}");
    }
    assert!(json(&acct, &financials_api)
        .await
        .as_array()
        .unwrap()
        .is_empty());
    let (status, location) = post_form(
        &acct,
        &financials_tab,
        &record("123,456.78", "招商银行上海分行", "6225 8801 2345 6789"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
    let saved = json(&acct, &financials_api).await;
    assert_eq!(saved[0]["revenue"], 12_345_678);
    assert_eq!(saved[0]["iit_withheld"], 8_880);
    assert_eq!(
        saved[0]["bank_accounts"][0]["number"]["value"],
        "6225880123456789"
    );
    let (_, html) = page(&acct, &financials_tab).await;
    for shown in [
        "123,456.78",
        "100,000.00",
        "23,456.78",
        "1,234.56",
        "0.00",
        "88.80",
    ] {
        assert!(html.contains(&format!(">{shown}<")), "{shown} on the page");
    }
    // The supervisor has the form; the auditor reads the figures but gets no form, and a
    // post is refused.
    let auditor = s.signed_in("shenji", Role::Auditor).await;
    let (_, html) = page(&boss, &financials_tab).await;
    assert!(html.contains("id=\"new-financial\""));

    // Payments against the contract: the supervisor records one, the accountant only reads.
    let fees_tab = format!("/clients/{mine}/fees");
    let payments = format!("/clients/{mine}/payments");
    let (_, html) = page(&acct, &fees_tab).await;
    assert!(!html.contains("id=\"new-payment\""));
    let token = csrf(&boss, &fees_tab).await;
    let payment = |token: &str, amount: &str, contract: &str| {
        vec![
            ("csrf", token.to_owned()),
            ("contract", contract.to_owned()),
            ("amount", amount.to_owned()),
            ("paid_on", today()),
            ("method", "转账".to_owned()),
            ("note", String::new()),
        ]
    };
    let acct_token = csrf(&acct, &fees_tab).await;
    let (status, _) = post_form(&acct, &payments, &payment(&acct_token, "500", &contract_id)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (amount, contract, says) in [
        ("0", contract_id.as_str(), "more than 0"),
        ("5.555", contract_id.as_str(), "金额"),
        ("500", "not-a-contract", "合同"),
    ] {
        let (status, body) = post_form(&boss, &payments, &payment(&token, amount, contract)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{amount}: {body}");
        assert!(body.contains(says), "{amount}: {body}");
    }
    // A contract of another client is no contract of this one.
    let (status, _) = post_form(
        &boss,
        &payments,
        &payment(&token, "500", "00000000-0000-4000-8000-000000000000"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(json(&boss, &format!("/api/v1/clients/{mine}/payments"))
        .await
        .as_array()
        .unwrap()
        .is_empty());
    let (status, location) =
        post_form(&boss, &payments, &payment(&token, "1,000", &contract_id)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
    assert_eq!(location, fees_tab);
    let (_, html) = page(&acct, &fees_tab).await;
    assert!(html.contains(">1,000.00<"), "the payment in yuan: {html}");
    assert!(
        html.contains(">1,200.50<"),
        "the monthly fee in yuan: {html}"
    );
    let (status, _) = page(&auditor, &fees_tab).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, html) = page(&auditor, &financials_tab).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an auditor sees no unassigned client: {html}"
    );
}

async fn the_client_page_edits_allowed_fields_and_supervisors_assign(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let (boss, acct, mine) = firm(&s).await;
    let sales = s.signed_in("xiaoshou", Role::Sales).await;
    let detail = format!("/clients/{mine}");
    let api = format!("/api/v1/clients/{mine}");
    let (_, html) = page(&boss, &detail).await;
    // An in-service client can only churn; the form offers nothing else.
    assert!(html.contains("id=\"edit-client\""));
    assert!(html.contains("option value=\"churned\""));
    assert!(!html.contains("option value=\"lead\""));
    assert!(!html.contains("option value=\"signed\""));
    assert!(html.contains("id=\"assign-client\""));
    let token = csrf(&boss, &detail).await;
    let version = |v: &Value| v["version"].as_i64().unwrap().to_string();
    let before = json(&boss, &api).await;
    let edit =
        |token: &str, version: &str, status: &str, tags: &str, notes: &str, capital: &str| {
            vec![
                ("csrf", token.to_owned()),
                ("version", version.to_owned()),
                ("status", status.to_owned()),
                ("orig_status", "in_service".to_owned()),
                ("tags", tags.to_owned()),
                ("orig_tags", String::new()),
                ("notes", notes.to_owned()),
                ("orig_notes", String::new()),
                (
                    "tax_authority",
                    "国家税务总局上海市浦东新区税务局".to_owned(),
                ),
                ("orig_tax_authority", String::new()),
                ("registered_capital", capital.to_owned()),
                ("orig_registered_capital", String::new()),
            ]
        };
    // A move the pipeline does not allow, tags past the limit, a capital with three decimals:
    // each is refused and nothing changes.
    let v = version(&before);
    for (status, tags, capital, says) in [
        ("lead", "", "", "cannot move"),
        ("in_service", &"很长的标签".repeat(5)[..], "", "标签"),
        ("in_service", "", "1.234", "注册资本"),
    ] {
        let (code, body) =
            post_form(&boss, &detail, &edit(&token, &v, status, tags, "", capital)).await;
        assert_eq!(
            code,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{status} {tags} {capital}: {body}"
        );
        assert!(body.contains(says), "{body}");
    }
    assert_eq!(json(&boss, &api).await["version"], before["version"]);
    // A good edit: only what changed is written.
    let (code, location) = post_form(
        &boss,
        &detail,
        &edit(
            &token,
            &v,
            "in_service",
            "重点客户，季度",
            "每月 5 日前交票据",
            "1,000,000",
        ),
    )
    .await;
    assert_eq!(code, StatusCode::SEE_OTHER, "{location}");
    assert_eq!(location, detail);
    let after = json(&boss, &api).await;
    assert_eq!(after["tags"], json!(["季度", "重点客户"]));
    assert_eq!(after["registered_capital"], 100_000_000);
    assert_eq!(after["status"], "in_service");
    let updated = s
        .audit()
        .await
        .into_iter()
        .rev()
        .find(|e| e.action == "client_updated")
        .unwrap();
    let fields = updated.fields;
    assert!(
        !fields.contains("status"),
        "unchanged status not written: {fields}"
    );
    assert!(
        fields.contains("tags") && fields.contains("registered_capital"),
        "{fields}"
    );
    let (_, html) = page(&boss, &detail).await;
    assert!(html.contains("1,000,000.00"), "capital in yuan");
    assert!(html.contains("季度、重点客户"));
    // The stale version of the page is refused rather than overwriting the newer client.
    let (code, body) = post_form(&boss, &detail, &edit(&token, &v, "churned", "", "", "")).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert_eq!(json(&boss, &api).await["status"], "in_service");
    // Notes can be changed but not emptied through the form.
    let v = version(&after);
    let mut emptied = edit(&token, &v, "in_service", "季度，重点客户", "", "1000000");
    for (k, val) in emptied.iter_mut() {
        match *k {
            "orig_notes" => *val = "每月 5 日前交票据".into(),
            "orig_tags" => *val = "季度，重点客户".into(),
            "orig_tax_authority" => *val = "国家税务总局上海市浦东新区税务局".into(),
            "orig_registered_capital" => *val = "1000000.00".into(),
            _ => {}
        }
    }
    let (code, body) = post_form(&boss, &detail, &emptied.clone()).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("不能清空"), "{body}");
    // Submitting the form unchanged writes nothing.
    for (k, val) in emptied.iter_mut() {
        if *k == "notes" {
            *val = "每月 5 日前交票据\r\n".into();
        }
    }
    let events = s.audit().await.len();
    let (code, _) = post_form(&boss, &detail, &emptied).await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    assert_eq!(json(&boss, &api).await["version"], after["version"]);
    assert_eq!(
        s.audit()
            .await
            .iter()
            .skip(events)
            .filter(|e| e.action == "client_updated")
            .count(),
        0
    );

    // Assignment: supervisors only, to an accountant (or supervisor) who exists.
    let other = boss.create_client(&client_body(2, &id_number(2))).await;
    let other = other["id"].as_str().unwrap().to_owned();
    let assign = format!("/clients/{other}/assignment");
    let token = csrf(&boss, &format!("/clients/{other}")).await;
    let (_, html) = page(&acct, &detail).await;
    assert!(html.contains("id=\"edit-client\""));
    assert!(!html.contains("id=\"assign-client\""));
    let acct_token = csrf(&acct, &detail).await;
    let (code, _) = post_form(
        &acct,
        &format!("/clients/{mine}/assignment"),
        &vec![
            ("csrf", acct_token),
            ("accountant", "kuaiji".into()),
            ("team", String::new()),
        ],
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    for (who, says) in [
        ("nobody", "no active user"),
        ("xiaoshou", "not an accountant"),
    ] {
        let (code, body) = post_form(
            &boss,
            &assign,
            &vec![
                ("csrf", token.clone()),
                ("accountant", who.into()),
                ("team", "二组".into()),
            ],
        )
        .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains(says), "{body}");
    }
    assert_eq!(json(&acct, "/api/v1/clients").await["total"], 1);
    let (code, location) = post_form(
        &boss,
        &assign,
        &vec![
            ("csrf", token.clone()),
            ("accountant", " kuaiji ".into()),
            ("team", "二组".into()),
        ],
    )
    .await;
    assert_eq!(code, StatusCode::SEE_OTHER, "{location}");
    assert_eq!(json(&acct, "/api/v1/clients").await["total"], 2);
    let (_, html) = page(&acct, &format!("/clients/{other}")).await;
    assert!(html.contains("二组"));
    // Sales may read every client but neither edit nor assign one.
    let (_, html) = page(&sales, &detail).await;
    assert!(!html.contains("id=\"edit-client\""));
    assert!(!html.contains("id=\"assign-client\""));
    let sales_token = csrf(&sales, &detail).await;
    let (code, _) = post_form(
        &sales,
        &detail,
        &edit(&sales_token, &v, "churned", "", "", ""),
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
}

async fn leads_move_through_stages_and_convert_into_clients(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let sales = s.signed_in("xiaoshou", Role::Sales).await;
    let acct = s.signed_in("kuaiji", Role::Accountant).await;
    let token = csrf(&sales, "/leads").await;
    let (code, location) = post_form(
        &sales,
        "/leads",
        &[
            ("csrf", token.as_str()),
            ("company_name", "杭州新线索网络科技有限公司"),
            ("contact_name", "周先生"),
            ("mobile", "13700001111"),
            ("source", "转介绍"),
        ],
    )
    .await;
    assert_eq!(code, StatusCode::SEE_OTHER, "{location}");
    let lead = json(&sales, "/api/v1/leads").await[0].clone();
    let id = lead["id"].as_str().unwrap().to_owned();
    let (_, html) = page(&sales, "/leads").await;
    assert!(html.contains(&format!("action=\"/leads/{id}\"")));
    assert!(html.contains(&format!("action=\"/leads/{id}/convert\"")));

    // A stage change keeps everything else on the lead.
    let v1 = lead["version"].as_i64().unwrap().to_string();
    let (code, body) = post_form(
        &sales,
        &format!("/leads/{id}"),
        &[
            ("csrf", token.as_str()),
            ("stage", "quoted"),
            ("version", v1.as_str()),
        ],
    )
    .await;
    assert_eq!(code, StatusCode::SEE_OTHER, "{body}");
    let lead = json(&sales, "/api/v1/leads").await[0].clone();
    assert_eq!(lead["stage"], "quoted");
    assert_eq!(lead["contact_name"], "周先生");
    assert_eq!(lead["mobile"]["value"], "13700001111");
    assert_eq!(lead["source"], "转介绍");
    // The page it was shown on is out of date now: refused, not overwritten.
    let (code, body) = post_form(
        &sales,
        &format!("/leads/{id}"),
        &[
            ("csrf", token.as_str()),
            ("stage", "lost"),
            ("version", v1.as_str()),
        ],
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    let (code, body) = post_form(
        &sales,
        &format!("/leads/{id}"),
        &[
            ("csrf", token.as_str()),
            ("stage", "signed-ish"),
            ("version", v1.as_str()),
        ],
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(json(&sales, "/api/v1/leads").await[0]["stage"], "quoted");

    // Converting needs what a client has and a lead does not.
    let v2 = lead["version"].as_i64().unwrap().to_string();
    let uscc = zf_domain::Uscc::with_check_char("91330100MA2H00007").unwrap();
    let rep_id = id_number(7);
    // The same number with another check character.
    let bad_id = format!(
        "{}{}",
        &rep_id[..17],
        if rep_id.ends_with('1') { '2' } else { '1' }
    );
    let convert = format!("/leads/{id}/convert");
    for (uscc, rep_id, says) in [
        ("91330100MA2H00000", rep_id.as_str(), "统一社会信用代码"),
        (uscc.as_str(), bad_id.as_str(), "法定代表人身份证号"),
    ] {
        let (code, body) = post_form(
            &sales,
            &convert,
            &[
                ("csrf", token.as_str()),
                ("version", v2.as_str()),
                ("uscc", uscc),
                ("taxpayer_type", "small_scale"),
                ("legal_rep_name", "周大为"),
                ("legal_rep_id_number", rep_id),
            ],
        )
        .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains(says), "{body}");
    }
    assert_eq!(s.client_count().await, 0);
    let fields = [
        ("csrf", token.as_str()),
        ("version", v2.as_str()),
        ("uscc", uscc.as_str()),
        ("taxpayer_type", "small_scale"),
        ("legal_rep_name", "周大为"),
        ("legal_rep_id_number", rep_id.as_str()),
    ];
    let (code, location) = post_form(&sales, &convert, &fields).await;
    assert_eq!(code, StatusCode::SEE_OTHER, "{location}");
    let client_id = location
        .strip_prefix("/clients/")
        .expect("to the new client");
    let client = json(&sales, &format!("/api/v1/clients/{client_id}")).await;
    assert_eq!(client["name"], "杭州新线索网络科技有限公司");
    assert_eq!(client["status"], "signed");
    assert_eq!(client["taxpayer_type"], "small_scale");
    let (_, html) = page(&sales, "/leads").await;
    assert!(html.contains(&format!("href=\"/clients/{client_id}\"")));
    assert!(!html.contains(&format!("action=\"/leads/{id}/convert\"")));
    let (code, body) = post_form(&sales, &convert, &fields).await;
    assert!(
        code == StatusCode::CONFLICT || code == StatusCode::UNPROCESSABLE_ENTITY,
        "converted twice: {code} {body}"
    );
    assert_eq!(s.client_count().await, 1);

    // Accountants work no leads.
    let (code, _) = page(&acct, "/leads").await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let acct_token = csrf(&acct, "/clients").await;
    let (code, _) = post_form(
        &acct,
        &format!("/leads/{id}"),
        &[
            ("csrf", acct_token.as_str()),
            ("stage", "lost"),
            ("version", "1"),
        ],
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
}

async fn the_dashboard_pages_each_follow_their_own_permission(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let (boss, acct, mine) = firm(&s).await;
    let sales = s.signed_in("xiaoshou", Role::Sales).await;

    // A follow-up due today shows on the accountant's own list and is closed from there.
    let tab = format!("/clients/{mine}/interactions");
    let token = csrf(&acct, &tab).await;
    let (code, _) = post_form(
        &acct,
        &tab,
        &[
            ("csrf", token.as_str()),
            ("kind", "call"),
            ("occurred_on", today().as_str()),
            ("summary", "催收本月票据"),
            ("follow_up_on", today().as_str()),
        ],
    )
    .await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    let (code, html) = page(&acct, "/follow-ups").await;
    assert_eq!(code, StatusCode::OK);
    assert!(html.contains("催收本月票据"), "{html}");
    assert!(html.contains("上海测试贸易有限公司1"));
    let interaction = json(&acct, &format!("/api/v1/clients/{mine}/interactions")).await[0].clone();
    let done = format!(
        "/clients/{mine}/interactions/{}/done",
        interaction["id"].as_str().unwrap()
    );
    assert!(html.contains(&format!("action=\"{done}\"")));
    let version = interaction["version"].as_i64().unwrap().to_string();
    let (code, location) = post_form(
        &acct,
        &done,
        &[
            ("csrf", token.as_str()),
            ("version", version.as_str()),
            ("from", "follow-ups"),
        ],
    )
    .await;
    assert_eq!(code, StatusCode::SEE_OTHER, "{location}");
    assert_eq!(location, "/follow-ups");
    let (_, html) = page(&acct, "/follow-ups").await;
    assert!(!html.contains("催收本月票据"));
    let closed = json(&acct, &format!("/api/v1/clients/{mine}/interactions")).await[0].clone();
    assert_eq!(closed["follow_up_done"], true);
    assert_eq!(closed["summary"], "催收本月票据");
    // The same button again is a stale version.
    let (code, _) = post_form(
        &acct,
        &done,
        &[
            ("csrf", token.as_str()),
            ("version", version.as_str()),
            ("from", "follow-ups"),
        ],
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT);

    // An item kept out past its return date shows on the custody list, with its client.
    let item: Value = boss
        .post(
            &format!("/api/v1/clients/{mine}/custody"),
            &json!({"kind": "tax_ukey", "description": "税控盘"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let item = item["id"].as_str().unwrap().to_owned();
    let r = acct
        .post(
            &format!("/api/v1/clients/{mine}/custody/{item}/moves"),
            &json!({"action": "check_out", "reason": "申报", "due_back": "2099-01-01"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, html) = page(&acct, "/custody/overdue").await;
    assert!(!html.contains("税控盘"));
    age_due_date(&s, &item, "2021-06-30").await;
    let (code, html) = page(&acct, "/custody/overdue").await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        html.contains("税控盘") && html.contains("2021-06-30"),
        "{html}"
    );
    assert!(html.contains(&format!("href=\"/clients/{mine}/custody\"")));

    // Marking a filing filed from the dashboard stays on the dashboard.
    let token = csrf(&acct, &format!("/clients/{mine}/filings")).await;
    let (code, _) = post_form(
        &acct,
        &format!("/clients/{mine}/filings/generate"),
        &[("csrf", token.as_str())],
    )
    .await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    let due = json(&acct, "/api/v1/filings/due").await;
    if let Some(task) = due["overdue"].as_array().unwrap().first() {
        let (_, html) = page(&acct, "/deadlines").await;
        assert!(html.contains("name=\"from\" value=\"deadlines\""));
        let (code, location) = post_form(
            &acct,
            &format!("/clients/{mine}/filings/{}", task["id"].as_str().unwrap()),
            &[
                ("csrf", token.as_str()),
                ("version", task["version"].to_string().as_str()),
                ("from", "deadlines"),
            ],
        )
        .await;
        assert_eq!(code, StatusCode::SEE_OTHER);
        assert_eq!(location, "/deadlines");
    }

    // Each page is its own operation: who may open which, and the links the dashboard shows.
    for (who, path, want) in [
        (&acct, "/deadlines", StatusCode::OK),
        (&acct, "/follow-ups", StatusCode::OK),
        (&acct, "/custody/overdue", StatusCode::OK),
        (&acct, "/arrears", StatusCode::OK),
        (&sales, "/deadlines", StatusCode::FORBIDDEN),
        (&sales, "/follow-ups", StatusCode::OK),
        (&sales, "/custody/overdue", StatusCode::FORBIDDEN),
        (&sales, "/arrears", StatusCode::OK),
    ] {
        let (code, _) = page(who, path).await;
        assert_eq!(code, want, "{} {path}", who.username);
    }
    let (_, html) = page(&acct, "/deadlines").await;
    for href in ["/follow-ups", "/custody/overdue", "/arrears"] {
        assert!(html.contains(&format!("href=\"{href}\"")), "{href}");
    }
    let (_, html) = page(&sales, "/follow-ups").await;
    assert!(!html.contains("href=\"/deadlines\""));
    assert!(!html.contains("href=\"/custody/overdue\""));
    assert!(html.contains("href=\"/arrears\""));
    assert!(!html.contains("<script"));
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
