//! Client lists in and out as firms keep them in Excel: a 10,000-row workbook with three bad
//! rows writes nothing and names them; fixed, it imports completely; export then import
//! preserves every field; a CSV saved by Excel on a Chinese Windows (GBK) reads correctly; an
//! export is audited, masked for those who may not reveal, and never runs as a formula.

mod common;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::Value;
use zf_domain::{IdNumber, Uscc};
use zf_policy::Role;
use zf_tabular::Table;

on_both_stores!(an_export_is_audited_permissioned_and_safe_to_open);

const HEADERS: [&str; 12] = [
    "客户名称",
    "统一社会信用代码",
    "纳税人类型",
    "法定代表人",
    "法定代表人身份证号",
    "客户状态",
    "负责会计",
    "所属团队",
    "标签",
    "注册资本(元)",
    "主管税务机关",
    "备注",
];

fn uscc(n: u32) -> String {
    Uscc::with_check_char(&format!("91440300{:09}", n))
        .unwrap()
        .as_str()
        .to_owned()
}

fn id_number(n: u32) -> String {
    let day = 1 + n % 28;
    let month = 1 + (n / 28) % 12;
    IdNumber::with_check_char(&format!("4403051985{month:02}{day:02}{:03}", n % 1000))
        .unwrap()
        .as_str()
        .to_owned()
}

/// A firm's client list of `n` rows, every field filled in.
fn client_list(n: u32) -> Table {
    let mut t = Table::new(HEADERS.iter().map(|h| h.to_string()).collect());
    for i in 0..n {
        t.push_row(vec![
            format!("深圳市第{i}号商贸有限公司"),
            uscc(i),
            if i % 3 == 0 {
                "一般纳税人"
            } else {
                "小规模纳税人"
            }
            .into(),
            "李四".into(),
            id_number(i),
            "服务中".into(),
            if i % 2 == 0 {
                "kuaiji".into()
            } else {
                String::new()
            },
            "二组".into(),
            "重点客户,零申报".into(),
            format!("{}.{:02}", 100_000 + i, i % 100),
            "国家税务总局深圳市南山区税务局".into(),
            // A note a spreadsheet would run as a formula if it were not escaped.
            if i % 50 == 0 {
                format!("=HYPERLINK(\"http://x\",\"{i}\")")
            } else {
                format!("第{i}行备注")
            },
        ]);
    }
    t
}

async fn import(s: &common::Session, bytes: Vec<u8>) -> (StatusCode, Value) {
    let r = s.post_bytes("/api/v1/clients/import", bytes).await;
    (r.status(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10000_row_workbook_with_three_bad_rows_writes_nothing_then_imports_whole_and_round_trips(
) {
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    s.signed_in("kuaiji", Role::Accountant).await;
    let good = client_list(10_000);
    let mut bad = good.clone();
    bad.rows[41].cells[1] = "91440300000000041X".into(); // wrong check character
    bad.rows[5000].cells[4] = "440305198501010011".into(); // wrong ID check character
    bad.rows[9998].cells[9] = "-12.5".into(); // negative capital
    let workbook = zf_tabular::write_xlsx(&bad, "客户").unwrap();
    let (status, report) = import(&boss, workbook).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(report["written"], false);
    assert_eq!(report["imported"], 0);
    assert_eq!(report["rows"], 10_000);
    let errors: Vec<(u64, String)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["column"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Spreadsheet rows: the header is row 1, so data row i is row i + 2.
    assert_eq!(
        errors,
        vec![
            (43, "统一社会信用代码".to_owned()),
            (5002, "法定代表人身份证号".to_owned()),
            (10000, "注册资本(元)".to_owned()),
        ]
    );
    assert_eq!(s.client_count().await, 0, "nothing was written");

    // The same file, fixed, imports completely.
    let started = std::time::Instant::now();
    let (status, report) = import(&boss, zf_tabular::write_xlsx(&good, "客户").unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], 10_000);
    println!("imported 10,000 rows in {:?}", started.elapsed());
    assert_eq!(s.client_count().await, 10_000);
    // Importing it again collides with every row and writes nothing.
    let (status, report) = import(&boss, zf_tabular::write_xlsx(&good, "客户").unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(report["errors"].as_array().unwrap().len(), 10_000);
    assert_eq!(s.client_count().await, 10_000);

    // Export → import into a fresh instance → export: every field is the same.
    let first = export(&boss, "xlsx").await;
    let exported = zf_tabular::read(&first, &Default::default()).unwrap();
    assert_eq!(exported.rows.len(), 10_000);
    assert_eq!(as_sorted_cells(&exported), as_sorted_cells(&good));
    let other = TestServer::start(Backend::Sqlite).await.unwrap();
    let boss2 = other.signed_in("zhuguan", Role::Supervisor).await;
    other.signed_in("kuaiji", Role::Accountant).await;
    let (status, report) = import(&boss2, first).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let second = zf_tabular::read(&export(&boss2, "csv").await, &Default::default()).unwrap();
    assert_eq!(as_sorted_cells(&second), as_sorted_cells(&good));
}

async fn export(s: &common::Session, format: &str) -> Vec<u8> {
    let r = s
        .get(&format!("/api/v1/clients/export?format={format}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    r.bytes().await.unwrap().to_vec()
}

fn as_sorted_cells(t: &Table) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = t.rows.iter().map(|r| r.cells.clone()).collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_saved_by_excel_in_gbk_is_read_correctly_and_a_partial_import_returns_the_rest() {
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    let mut text =
        String::from("客户名称,统一社会信用代码,纳税人类型,法定代表人,法定代表人身份证号,标签\r\n");
    for i in 0..3 {
        text.push_str(&format!(
            "广州市白云区第{i}商行,{},小规模纳税人,陈七,{},\"餐饮，个体\"\r\n",
            uscc(i),
            id_number(i)
        ));
    }
    text.push_str("坏行公司,123,小规模纳税人,陈七,123,\r\n");
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&gbk).is_err(), "the file really is GBK");
    // All or nothing by default…
    let (status, report) = import(&boss, gbk.to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(report["errors"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(s.client_count().await, 0);
    // …or the good rows, with the bad ones kept apart.
    let r = boss
        .post_bytes("/api/v1/clients/import?partial=true", gbk.to_vec())
        .await;
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["imported"], 3, "{report}");
    assert_eq!(report["written"], true);
    let list: Value = boss
        .get("/api/v1/clients?q=%E7%99%BD%E4%BA%91")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 3);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"广州市白云区第0商行"), "{names:?}");
    assert_eq!(
        list["items"][0]["tags"],
        serde_json::json!(["个体", "餐饮"])
    );
}

async fn an_export_is_audited_permissioned_and_safe_to_open(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    let acct = s.signed_in("kuaiji", Role::Accountant).await;
    let t = client_list(3);
    let (status, _) = import(&boss, zf_tabular::write_csv(&t)).await;
    assert_eq!(status, StatusCode::OK);
    // A supervisor may export and reveal: ID numbers in full; formulas escaped in the file.
    let bytes = export(&boss, "csv").await;
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with('\u{feff}'), "a BOM, so Excel reads UTF-8");
    assert!(text.contains(&id_number(1)));
    assert!(
        text.contains("\"'=HYPERLINK("),
        "a formula cell is escaped: {text}"
    );
    assert!(!text.contains(",=HYPERLINK"));
    let events = s.audit().await;
    let e = events
        .iter()
        .find(|e| e.action == "clients_exported")
        .expect("export audited");
    assert_eq!(e.actor_name, "zhuguan");
    assert!(e.detail.as_deref().unwrap().contains("3 rows"));
    assert!(e.detail.as_deref().unwrap().contains("in full"));
    // An accountant may not export without approval.
    let r = acct.get("/api/v1/clients/export?format=csv").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
