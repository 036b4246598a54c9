//! The key commands as an operator runs them on a demo firm: `keys rotate --blind-index`,
//! `keys rotate --reencrypt` and `keys rotate`, each followed by `keys status`; the firm's
//! export is the same after each, while every search token, data key and KEK has changed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod common;

use common::{ok, BIN};

fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("ZHANGFANG_DATABASE")
        .output()
        .unwrap()
}

fn export(data: &Path, file: &Path) -> Vec<u8> {
    ok(run(
        data,
        &[
            "export",
            "--out",
            file.to_str().unwrap(),
            "--as",
            "demo-zhuguan",
        ],
    ));
    std::fs::read(file).unwrap()
}

fn status(data: &Path) -> Value {
    serde_json::from_str(&ok(run(data, &["keys", "status"]))).unwrap()
}

fn column(data: &Path, query: &str) -> Vec<Vec<u8>> {
    let c = rusqlite::Connection::open(data.join("zhangfang.db")).unwrap();
    let mut stmt = c.prepare(query).unwrap();
    stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn names(data: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(data.join("zhangfang.db")).unwrap();
    let mut stmt = c
        .prepare("SELECT name FROM system_keys ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn each_key_command_changes_its_keys_and_keeps_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Requests in flight are none here; the grace only makes the jobs wait.
    std::fs::write(
        data.join("zhangfang.toml"),
        "[data_keys]\ngrace_seconds = 1\n",
    )
    .unwrap();
    ok(run(&data, &["demo", "--clients", "25"]));
    let first = export(&data, &tmp.path().join("a.csv"));
    let tokens = column(&data, "SELECT legal_rep_id_index FROM clients");
    let keys = column(&data, "SELECT wrapped_dek FROM client_keys");

    let said = ok(run(&data, &["keys", "rotate", "--blind-index"]));
    assert!(
        said.contains("finished") && said.contains("25 clients"),
        "{said}"
    );
    let job = &status(&data)["key_job"];
    assert_eq!(
        (job["kind"].as_str(), job["state"].as_str()),
        (Some("reindex"), Some("finished")),
        "{job}"
    );
    let after = column(&data, "SELECT legal_rep_id_index FROM clients");
    assert!(
        after.iter().all(|t| !tokens.contains(t)),
        "every token changed"
    );
    let held = names(&data);
    assert!(
        held.contains(&"blind-index/v1".to_owned()) && held.contains(&"blind-index/v2".to_owned()),
        "{held:?}"
    );
    assert_eq!(export(&data, &tmp.path().join("b.csv")), first);

    let said = ok(run(&data, &["keys", "rotate", "--reencrypt"]));
    assert!(said.contains("finished"), "{said}");
    let job = &status(&data)["key_job"];
    assert_eq!(
        (job["kind"].as_str(), job["holders_done"].as_i64()),
        (Some("reencrypt"), Some(25)),
        "{job}"
    );
    assert!(column(&data, "SELECT wrapped_dek FROM client_keys")
        .iter()
        .all(|k| !keys.contains(k)));
    assert_eq!(export(&data, &tmp.path().join("c.csv")), first);

    let said = ok(run(&data, &["keys", "rotate", "--grace-seconds", "0"]));
    assert!(
        said.contains("KEK v1 -> v2") && said.contains("retired: v1"),
        "{said}"
    );
    let kek = status(&data);
    assert_eq!(kek["current"], 2, "{kek}");
    assert_eq!(export(&data, &tmp.path().join("d.csv")), first);
    let verified = ok(run(&data, &["audit", "verify"]));
    assert!(verified.contains("intact"), "{verified}");
}
